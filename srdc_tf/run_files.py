"""What a run directory holds besides logs, and how to read it back.

`runner.run` writes, next to `model.keras` (`save_model`, atomically), the
two things a model file does not carry but exporting and evaluating need:

- `classes.json`: the class names, a JSON list in label order.
- `transform.json`: the evaluation image transform (`ImageTransform`
  fields), so that an export resizes encoded images as the run evaluated.
- `backbone.keras`, for a run trained on cached features of a frozen
  backbone: that backbone, which `model.keras` (the heads) lacks.
"""

import dataclasses
import json
import os
import zipfile

import keras
import numpy as np

from srdc_tf import distribute
# Registers SRDCModel and ImagePreprocessing, so that model files load.
from srdc_tf import models  # pylint: disable=unused-import
from srdc_tf import run_directory
from srdc_tf import write_guard
from srdc_tf.data import transforms

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
TRANSFORM_FILE = "transform.json"
BACKBONE_FILE = "backbone.keras"


def write_json(path, value):
  """Writes JSON beside `path` and renames it into place, so a reader (or a
  run killed while writing) never sees half a file."""
  staging = f"{path}.{os.getpid()}.tmp"
  with write_guard.guarded(os.path.basename(path), path,
                           "any earlier one is unchanged", cleanup=staging):
    with open(staging, "w") as f:
      json.dump(value, f, indent=2)
    os.replace(staging, path)


def save_model(model, path, strategy=None):
  """`model.save(path)` atomically: into a staging file, then renamed, so a
  run killed while saving never leaves a torn `model.keras`. Only the chief
  writes `path` (see `distribute.write_location`)."""
  with distribute.write_location(path, strategy) as where:
    folder, name = os.path.split(where)
    # Keras wants the .keras suffix; the leading dot hides the staging file.
    staging = os.path.join(folder, f".{os.getpid()}.staging.{name}")
    what, intact = f"the model {name}", "any earlier one is unchanged"
    optimizer = getattr(model, "optimizer", None)  # None: not compiled.
    write_guard.check_room(folder, write_guard.estimate_bytes(
        model.weights + (optimizer.variables if optimizer else [])), what,
                           intact)
    try:
      with write_guard.guarded(what, where, intact, cleanup=staging):
        model.save(staging)
        os.replace(staging, where)
    finally:
      if os.path.exists(staging):
        os.remove(staging)


def save_predictions(path, predictions):
  """Writes `[N]` target predictions to `path` (.npy) atomically."""
  staging = f"{path}.{os.getpid()}.staging.npy"
  with write_guard.guarded("the target predictions", path, cleanup=staging):
    np.save(staging, np.asarray(predictions, np.int32))
    os.replace(staging, path)


def write_run_files(model_dir, class_names, transform):
  """Writes `classes.json` and `transform.json` into `model_dir`.

  Args:
    model_dir: the run directory.
    class_names: the class names, in label order.
    transform: the run's `ImageTransform`.
  """
  write_json(os.path.join(model_dir, CLASSES_FILE),
              [str(name) for name in class_names])
  write_json(os.path.join(model_dir, TRANSFORM_FILE),
              dataclasses.asdict(transform))


def read_class_names(model_dir):
  """The class names a run was trained with.

  Args:
    model_dir: the run directory.

  Returns:
    A tuple of class names, in label order.

  Raises:
    FileNotFoundError: the run has no `classes.json`.
    ValueError: the file is not a non-empty list of strings.
  """
  path = os.path.join(model_dir, CLASSES_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path!r} not found: the run directory must hold the class names "
        "(runner.run writes them)")
  names = run_directory.read_json(path)
  if (not isinstance(names, list) or not names
      or not all(isinstance(name, str) for name in names)):
    raise ValueError(
        f"{path!r} must hold a non-empty JSON list of class names, got "
        f"{names!r}")
  return tuple(names)


def read_transform(model_dir):
  """The evaluation `ImageTransform` of a run, or None if not recorded.

  Args:
    model_dir: the run directory.

  Returns:
    An `ImageTransform`, or None when the run has no `transform.json`.
  """
  path = os.path.join(model_dir, TRANSFORM_FILE)
  if not os.path.isfile(path):
    return None
  fields = run_directory.read_json(path)
  try:
    return transforms.ImageTransform(**fields)
  except (TypeError, ValueError) as error:
    raise ValueError(f"{path!r} is not an image transform: {fields!r}") from error


def load_model(model_dir):
  """Loads `<model_dir>/model.keras` (an `SRDCModel`) for inference: the
  optimizer state is not restored.

  Args:
    model_dir: the run directory.

  Returns:
    The `keras.Model`.
  """
  path = check_model_file(model_dir)
  return _load_keras_file(path)


def check_model_file(model_dir):
  """Checks, without loading it, that a run's `model.keras` is whole.

  Args:
    model_dir: the run directory.

  Returns:
    The path of `model.keras`.

  Raises:
    FileNotFoundError: there is none (naming the path).
    ValueError: it is not a complete `.keras` archive (truncated or
      corrupt: a copy that stopped early, a full disk), naming it.
  """
  path = os.path.join(model_dir, MODEL_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path!r} not found: --model_dir must be a training run directory")
  _check_archive(path)
  return path


def _check_archive(path):
  if not zipfile.is_zipfile(path):
    raise ValueError(
        f"{path!r} is truncated or corrupt: not a complete .keras archive "
        f"({os.path.getsize(path)} bytes); train again or copy it again")


def _load_keras_file(path):
  """`keras.saving.load_model` (no optimizer) with errors that name the
  file: Keras says "File not found" of a truncated one."""
  _check_archive(path)
  try:
    return keras.saving.load_model(path, compile=False)
  except Exception as error:  # pylint: disable=broad-except
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    raise ValueError(f"{path!r} is truncated or corrupt: it cannot be "
                     f"loaded ({first_line})") from error


def load_backbone(model_dir):
  """The frozen backbone of a run trained on cached features, or None.

  Args:
    model_dir: the run directory.

  Returns:
    A `keras.Model` from images to features, or None when the run's
    `model.keras` takes images itself.
  """
  path = os.path.join(model_dir, BACKBONE_FILE)
  if not os.path.isfile(path):
    return None
  return _load_keras_file(path)
