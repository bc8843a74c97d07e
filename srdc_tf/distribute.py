"""The one place that builds a `tf.distribute` strategy, and says which
process of it writes files.

Under `MultiWorkerMirroredStrategy` every worker runs the same program;
only the chief writes what a run leaves behind (checkpoints, model file,
export, TensorBoard and CSV logs, summaries). The others still go through
the same saving code, into a private temporary folder that is then deleted:
saving may take part in collective operations that every worker must join.
"""

import contextlib
import json
import os
import shutil
import tempfile

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


def is_chief(strategy=None):
  """Whether this process writes the run's files (always, but for the
  non-chief workers of a multi-worker strategy)."""
  strategy = strategy or tf.distribute.get_strategy()
  return bool(strategy.extended.should_checkpoint)


def worker_name(strategy=None):
  """`<task type>-<task id>` of a multi-worker process, else "local"."""
  strategy = strategy or tf.distribute.get_strategy()
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return "local"
  return f"{resolver.task_type}-{resolver.task_id}"


@contextlib.contextmanager
def write_location(path, strategy=None):
  """Yields where this process writes `path`: `path` itself on the chief,
  else a temporary folder, deleted on exit, that takes its place.

  Args:
    path: a file or folder path of the chief's.
    strategy: the strategy (default: the current one).

  Yields:
    A path to write to.
  """
  if is_chief(strategy):
    yield path
    return
  scratch = tempfile.mkdtemp(prefix=f"srdc-{worker_name(strategy)}-")
  try:
    yield os.path.join(scratch, os.path.basename(os.path.normpath(path)))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
