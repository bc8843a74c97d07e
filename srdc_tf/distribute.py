"""The one place that builds a `tf.distribute` strategy."""

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def create_strategy(name="default", num_cpu_devices=0):
  """Builds a distribution strategy.

  Args:
    name: "default" (one device), "mirrored" (every local GPU, or
      `num_cpu_devices` logical CPUs when given: for testing without GPUs),
      or "multi_worker" (MultiWorkerMirroredStrategy configured by the
      `TF_CONFIG` environment variable).
    num_cpu_devices: split the CPU into this many logical devices for
      "mirrored". Must be called before TensorFlow initialises its devices.

  Returns:
    A `tf.distribute.Strategy`.
  """
  if name not in STRATEGIES:
    raise ValueError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("--strategy=multi_worker needs the TF_CONFIG "
                       "environment variable (cluster and task)")
    try:
      json.loads(os.environ["TF_CONFIG"])
    except json.JSONDecodeError as error:
      raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
    return tf.distribute.MultiWorkerMirroredStrategy()
  if num_cpu_devices and num_cpu_devices > 0:
    split_cpu(num_cpu_devices)
    devices = [f"/cpu:{i}" for i in range(num_cpu_devices)]
    return tf.distribute.MirroredStrategy(devices)
  return tf.distribute.MirroredStrategy()


def split_cpu(num_devices):
  """Splits the physical CPU into `num_devices` logical devices (once)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  existing = tf.config.get_logical_device_configuration(cpu)
  if existing and len(existing) >= num_devices:
    return
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
