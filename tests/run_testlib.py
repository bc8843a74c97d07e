"""Helpers of the distributed, resume and bad-input tests: starting the
training binary, reading saved weights, free ports."""

import io
import os
import socket
import subprocess
import sys
import zipfile

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A run of a few seconds: LeNet on 16 x 16 synthetic images.
TINY_RUN = [
    "--source=synthetic:source", "--target=synthetic:target",
    "--synthetic_examples_per_class=8", "--backbone=lenet",
    "--image_size=16", "--bottleneck_dim=16", "--batch_size=8",
    "--backbone_lr_multiplier=1.0", "--kmeans_iterations=2",
    "--export_dir=", "--verbose=0",
]


def train_command(*args):
  return [sys.executable, "-m", "srdc_tf.train", *args]


def environment(**extra):
  return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
          "PYTHONPATH": REPO, **extra}


def train(*args, timeout=300, **env):
  """Runs the training binary to its end; returns the CompletedProcess."""
  return subprocess.run(train_command(*args), cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, env=environment(**env))


def run_module(module, *args, timeout=300):
  """Runs `python -m module args`; returns the CompletedProcess."""
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout,
                        env=environment())


def start_training(*args, log_path, **env):
  """Starts the training binary; its output goes to `log_path`."""
  log = open(log_path, "w")  # pylint: disable=consider-using-with
  process = subprocess.Popen(train_command(*args), cwd=REPO, stdout=log,
                             stderr=subprocess.STDOUT, env=environment(**env))
  log.close()
  return process


def stop(process):
  """Kills a process that may still run and reaps it."""
  if process.poll() is None:
    process.kill()
  process.wait(timeout=30)


def free_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def _datasets(group, prefix=""):
  values = {}
  for key, item in group.items():
    if isinstance(item, h5py.Dataset):
      values[f"{prefix}/{key}"] = np.asarray(item)
    else:
      values.update(_datasets(item, f"{prefix}/{key}"))
  return values


def read_weights(path):
  """Every array of a `.weights.h5` file, or of the weights inside a
  `.keras` file, by its path in the file (model, tables and optimizer)."""
  path = str(path)
  if path.endswith(".keras"):
    with zipfile.ZipFile(path) as archive:
      contents = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(contents, "r") as weights:
      return _datasets(weights)
  with h5py.File(path, "r") as weights:
    return _datasets(weights)


def find(weights, suffix):
  """The one array whose path ends with `suffix`."""
  found = [value for key, value in weights.items() if key.endswith(suffix)]
  assert len(found) == 1, (suffix, sorted(weights))
  return found[0]
