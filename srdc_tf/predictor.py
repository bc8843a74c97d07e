"""A trained model for prediction: an export or a run directory, one API.

`load(path)` takes a SavedModel version folder (`saved_models/<name>/<N>`),
an export base (its newest version is used), or a training run directory
(`model.keras`, its run files and, for a run on cached features, the
frozen `backbone.keras`). The `Predictor` it returns predicts pixel arrays
(`predict`) or streams image files (`predict_files`): files are read and
decoded by tf.data in parallel, batch by batch, so memory stays constant
however many there are, and a file that cannot be read or decoded is
reported instead of stopping the pass.
"""

import csv
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from srdc_tf import console
from srdc_tf import prediction
from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf.data import transforms
from srdc_tf.data import validation

SAVED_MODEL_FILE = "saved_model.pb"
NOT_AN_IMAGE = "not a JPEG, PNG, GIF or BMP image"


@dataclasses.dataclass(frozen=True)
class FileBatch:
  """What `predict_files` yields: the files of one batch that were
  predicted (`paths`, their input `positions`, their `probabilities`) and
  the bad files met since the last batch (`bad`: `(position, path,
  problem)` triples), both in input order."""
  paths: list
  positions: list
  probabilities: np.ndarray
  bad: list


def load(path):
  """Loads a trained model for prediction.

  Args:
    path: an export version folder, an export base (the newest version),
      or a training run directory.

  Returns:
    A `Predictor`.

  Raises:
    FileNotFoundError: `path` is none of these, naming what it lacks.
  """
  if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
    return Predictor.from_export(path)
  if os.path.isfile(os.path.join(path, run_files.MODEL_FILE)):
    return Predictor.from_run(path)
  versions = sorted(
      (int(name) for name in (os.listdir(path) if os.path.isdir(path) else ())
       if re.fullmatch(r"\d+", name)
       and os.path.isfile(os.path.join(path, name, SAVED_MODEL_FILE))))
  if versions:
    return Predictor.from_export(os.path.join(path, str(versions[-1])))
  raise FileNotFoundError(
      f"{path!r} is not a model: expected an export version folder (holding "
      f"{SAVED_MODEL_FILE}), an export base of numbered versions, or a run "
      f"directory (holding {run_files.MODEL_FILE})")


class Predictor:
  """Class probabilities of images from a trained model.

  Build it with `load`. Attributes: `path`, `class_names` (label order),
  `transform` (the evaluation `ImageTransform` files are decoded with).
  """

  def __init__(self, path, class_names, transform, probabilities_fn):
    self.path = path
    self.class_names = tuple(class_names)
    self.transform = transform
    self._probabilities = probabilities_fn

  @classmethod
  def from_export(cls, export_dir):
    """A `Predictor` on an export's `serving_default` signature."""
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures[serving.IMAGES_SIGNATURE]
    return cls(export_dir, serving.exported_class_names(loaded),
               serving.exported_transform(loaded),
               lambda images: serve(images=images)["probabilities"])

  @classmethod
  def from_run(cls, model_dir):
    """A `Predictor` on a run's `model.keras` (behind its frozen backbone
    for a run on cached features)."""
    model = run_files.load_model(model_dir)
    backbone = run_files.load_backbone(model_dir)
    if model.backbone is None and backbone is None:
      raise FileNotFoundError(
          f"{os.path.join(model_dir, run_files.BACKBONE_FILE)!r} not found: "
          "the model takes backbone features and the run lacks its backbone")
    transform = run_files.read_transform(model_dir)
    if transform is None:  # A run from before transform.json was written.
      shape = (backbone or model).input_shape
      shape = shape[1:] if backbone is not None else model.input_shape_
      transform = transforms.ImageTransform(image_size=shape[0],
                                            channels=shape[-1])

    @tf.function(reduce_retracing=True)
    def probabilities(images):
      inputs = images if backbone is None else backbone(images,
                                                        training=False)
      _, _, logits = model.embed(inputs, training=False)
      return tf.nn.softmax(tf.cast(logits, tf.float32))

    return cls(model_dir, run_files.read_class_names(model_dir), transform,
               probabilities)

  def predict(self, images, batch_size=64):
    """Predicts a batch of images.

    Args:
      images: `[N, H, W, C]` pixels in [0, 255] (any size: resized as in
        evaluation unless already at the model's), or a list of image file
        paths (which must all be readable images).
      batch_size: images per model call.

    Returns:
      A dict: `probabilities` `[N, K]`, `class_id` `[N]`, `class_name`
      (N strings).

    Raises:
      ValueError: a file of `images` could not be used, naming it.
    """
    if isinstance(images, (list, tuple)) and images and isinstance(
        images[0], (str, os.PathLike)):
      parts = []
      for batch in self.predict_files([os.fspath(p) for p in images],
                                      batch_size):
        if batch.bad:
          _, path, problem = batch.bad[0]
          raise ValueError(f"{path}: {problem}")
        parts.append(batch.probabilities)
      probabilities = np.concatenate(parts)
    else:
      images = np.asarray(images)
      if images.ndim != 4:
        raise ValueError("images must be [N, H, W, C] pixels or a list of "
                         f"file paths, got shape {images.shape}")
      parts = []
      for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start:start + batch_size],
                                     tf.float32)
        if tuple(batch.shape[1:]) != tuple(self.transform.shape):
          batch = tf.map_fn(self.transform.eval, batch)
        parts.append(np.asarray(self._probabilities(batch)))
      probabilities = np.concatenate(parts)
    class_ids = np.argmax(probabilities, axis=1)
    return {"probabilities": probabilities, "class_id": class_ids,
            "class_name": [self.class_names[i] for i in class_ids]}

  def predict_files(self, paths, batch_size=64):
    """Streams predictions of image files, batch by batch.

    Args:
      paths: image file paths.
      batch_size: images per batch.

    Yields:
      `FileBatch`es in input order; the last one may hold only `bad`
      files. Every path is in exactly one batch's `paths` or `bad`.
    """
    paths = list(paths)
    no_classes = np.zeros((0, len(self.class_names)), np.float32)
    expected = 0  # The next index not yet yielded.
    for indices, (images, known) in _file_dataset(paths, self.transform,
                                                  batch_size):
      indices, known = indices.numpy(), known.numpy()
      is_image = dict(zip(indices.tolist(), known.tolist()))
      bad = []
      for index in range(expected, int(indices[-1]) + 1):
        if index not in is_image or not is_image[index]:
          # Dropped (it failed to read or decode), or not an image.
          bad.append((index, paths[index],
                      _problem(paths[index], index in is_image)))
      expected = int(indices[-1]) + 1
      probabilities = (np.asarray(self._probabilities(
          tf.boolean_mask(images, known))) if known.any() else no_classes)
      positions = [int(i) for i, ok in zip(indices, known) if ok]
      yield FileBatch([paths[i] for i in positions], positions,
                      probabilities, bad)
    if expected < len(paths):
      yield FileBatch([], [], no_classes,
                      [(i, paths[i], _problem(paths[i], False))
                       for i in range(expected, len(paths))])


def _problem(path, was_read):
  """Why a file failed: `was_read`, its first bytes name no image format;
  else the pipeline dropped it on a read or decode error."""
  if not os.path.exists(path):
    return "no such file"
  if not os.path.isfile(path):
    return "not a regular file"
  if os.path.getsize(path) == 0:
    return "empty file"
  if was_read:
    return NOT_AN_IMAGE
  return "could not be decoded (corrupt or truncated image)"


def _file_dataset(paths, transform, batch_size):
  """`(indices, (images, is_image))` batches of the files; a file that
  fails to read or decode is dropped (its index missing), and a file whose
  first bytes name no known format has `is_image` False (and zero
  pixels)."""
  def load(index, path):
    contents = tf.io.read_file(path)
    known = tf.reduce_any(list(
        validation.image_format_tensors(contents).values()))

    def decode():
      return transform.eval(transforms.decode_image(contents,
                                                    transform.channels))

    image = tf.cond(known, decode,
                    lambda: tf.zeros(transform.shape, tf.float32))
    return index, (image, known)

  dataset = tf.data.Dataset.from_tensor_slices(
      (tf.range(len(paths), dtype=tf.int64), tf.constant(paths, tf.string)))
  return (dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
          .ignore_errors()
          .batch(batch_size)
          .prefetch(1))


def predict_to_csv(predictor, paths, output, top_k, batch_size,
                   fail_on_bad=False):
  """Writes the predictions of `paths` to the CSV file `output`.

  Rows are written as batches finish, into a staging file renamed to
  `output` at the end, so that a stopped pass leaves no partial CSV.

  Args:
    predictor: a `Predictor`.
    paths: the image files.
    output: the CSV path.
    top_k: classes ranked per row.
    batch_size: images per model call.
    fail_on_bad: raise at the first bad file instead of listing it.

  Returns:
    `(predicted, bad)`: the number of rows with a prediction, and the
    `(path, problem)` pairs of the files without.

  Raises:
    ValueError: with `fail_on_bad`, the first bad file and its problem.
  """
  k = min(top_k, len(predictor.class_names))
  folder = os.path.dirname(os.path.abspath(output))
  os.makedirs(folder, exist_ok=True)
  staging = f"{output}.{os.getpid()}.tmp"
  predicted, bad = 0, []
  progress = console.Progress("predicting", total=len(paths), enabled=True)
  try:
    with open(staging, "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=prediction.csv_columns(k))
      writer.writeheader()
      for batch in predictor.predict_files(paths, batch_size):
        if batch.bad and fail_on_bad:
          _, path, problem = batch.bad[0]
          raise ValueError(f"{path}: {problem} (--fail_on_bad_images)")
        rows = list(zip(batch.positions, prediction.prediction_rows(
            batch.paths, batch.probabilities, predictor.class_names, k)))
        rows += [(position, prediction.error_row(path, problem, k))
                 for position, path, problem in batch.bad]
        writer.writerows(row for _, row in sorted(rows, key=lambda r: r[0]))
        f.flush()
        predicted += len(batch.paths)
        bad += [(path, problem) for _, path, problem in batch.bad]
        progress.update(len(batch.paths) + len(batch.bad),
                        note=f"{len(bad)} bad" if bad else "")
    os.replace(staging, output)
  finally:
    progress.close()
    if os.path.exists(staging):
      os.remove(staging)
  return predicted, bad
