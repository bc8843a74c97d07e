"""Shared artefacts of the export, serving, evaluation and TensorBoard tests.

One tiny training run (synthetic data, 2 epochs of 2 steps) is made once per
test process and shared, as are small untrained models: a plain import
cache (`functools.cache`) rather than fixtures, so that every test file can
use them without a conftest.
"""

import atexit
import functools
import os
import site
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from srdc_tf import run_data
from srdc_tf import run_settings
from srdc_tf import runner
from srdc_tf.models import build_backbone
from srdc_tf.models import SRDCModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
CLASS_NAMES = ("disc", "square", "triangle", "cross", "ring", "bar")
IMAGE_SHAPE = (32, 32, 3)
EXAMPLES_PER_CLASS = 10
BOTTLENECK = 64

WORK = tempfile.mkdtemp(prefix="srdc_serving_tests_")
atexit.register(shutil.rmtree, WORK, True)


def work_dir(name):
  """A fresh folder under the tests' temporary root."""
  path = tempfile.mkdtemp(prefix=f"{name}-", dir=WORK)
  return path


def tiny_model(seed=0):
  """An untrained SRDCModel with a LeNet backbone on 32x32x3 images."""
  tf.keras.utils.set_random_seed(seed)
  return SRDCModel(build_backbone("lenet", IMAGE_SHAPE),
                   num_classes=len(CLASS_NAMES), input_shape=IMAGE_SHAPE,
                   num_source_examples=30, num_target_examples=30,
                   bottleneck_dim=BOTTLENECK)


def pixel_images(count, shape=IMAGE_SHAPE, seed=0):
  """Integer-valued float32 pixels, so PNG encoding is lossless."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, size=(count,) + tuple(shape)).astype(np.float32)


@functools.cache
def trained_run():
  """Trains once with `runner.run` and exports; returns
  `(settings, data, result)`."""
  root = work_dir("run")
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target",
      model_dir=os.path.join(root, "model"),
      synthetic_examples_per_class=EXAMPLES_PER_CLASS, epochs=2,
      steps_per_epoch=2, batch_size=16, bottleneck_dim=BOTTLENECK,
      export_dir=os.path.join(root, "export"), verbose=0)
  data = run_data.load_data(settings)
  result = runner.run(settings, data, tf.distribute.get_strategy())
  return settings, data, result


def folder_size(path):
  """Bytes of every file under `path`."""
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, names in os.walk(path) for name in names)


def run_python(args, cwd=REPO, timeout=240, isolated=False):
  """Runs the venv's Python; returns the CompletedProcess (text).

  `isolated` (with `args` = `["-c", code]`): a machine where only the
  dependencies are installed. The venv's site-packages are put on the path
  without their .pth files (`-S`), so the editable install of this package
  (a .pth file) does not make srdc_tf importable; `-I` drops the working
  directory and the environment's paths.
  """
  env = {key: value for key, value in os.environ.items()
         if key != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  args = list(args)
  if isolated:
    if args[:1] != ["-c"]:
      raise ValueError(f"isolated runs take ['-c', code], got {args[:1]}")
    prelude = f"import sys\nsys.path.extend({site.getsitepackages()!r})\n"
    args = ["-I", "-S", "-c", prelude + args[1]]
  command = [PYTHON] + args
  return subprocess.run(command, cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)
