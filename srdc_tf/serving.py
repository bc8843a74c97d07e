"""Exports a trained model as a SavedModel for TF Serving.

The one export path of the project: `runner.run` and the `srdc_tf.export`
binary both call `export_saved_model`. An export is a plain SavedModel
(no `srdc_tf` import is needed to load or serve it) with two signatures:

- `serving_default`: `images`, float32 `[batch, H, W, C]` pixels in
  [0, 255] at the training size; the model does its own preprocessing.
- `serve_image_bytes`: `image_bytes`, a `[batch]` string tensor of encoded
  JPEG, PNG, GIF or BMP images of any size, grey or colour; they are
  decoded and resized in the graph exactly as evaluation does
  (`ImageTransform.eval`).

Both return `probabilities` `[batch, K]`, `class_id` `[batch]`,
`class_name` `[batch]` and `embedding` (the penultimate feature `h`,
`[batch, bottleneck_dim]`). Malformed inputs fail with an
`InvalidArgumentError` that says what was expected and what was received.
"""

import os
import re
import shutil
import tempfile

import tensorflow as tf

from srdc_tf.data import transforms

IMAGES_SIGNATURE = "serving_default"
IMAGE_BYTES_SIGNATURE = "serve_image_bytes"
OUTPUT_KEYS = ("probabilities", "class_id", "class_name", "embedding")

# Leading bytes of the formats `tf.io.decode_image` reads. Checking them
# first turns garbage input into a message naming the bad element, instead
# of a decoder error about an unknown format somewhere in the batch.
MAGIC_NUMBERS = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")

# Renaming onto an existing version fails, so concurrent exports retry with
# the next number; this bounds the retries.
_MAX_VERSION_ATTEMPTS = 100


def next_version(export_base):
  """The next integer version under `export_base` (1 when there is none)."""
  if not os.path.isdir(export_base):
    return 1
  versions = [int(n) for n in os.listdir(export_base) if re.fullmatch(r"\d+", n)]
  return max(versions, default=0) + 1


def _check(condition, *message):
  """A graph assertion whose error lists `message` (strings and tensors)."""
  return tf.debugging.Assert(condition, list(message), summarize=16)


class _ServingModule(tf.Module):
  """The exported object: two signatures and the settings they were built
  with (`class_names`, `image_size`, `resize_size` (0: none), `channels`),
  kept as variables so that a loader can read them back."""

  def __init__(self, model, class_names, transform, backbone=None):
    super().__init__()
    self.class_names = tf.Variable(list(class_names), trainable=False,
                                   name="class_names")
    self.image_size = tf.Variable(transform.image_size, trainable=False,
                                  name="image_size")
    self.resize_size = tf.Variable(transform.resize_size or 0,
                                   trainable=False, name="resize_size")
    self.channels = tf.Variable(transform.channels, trainable=False,
                                name="channels")
    image_shape = tuple(transform.shape)

    def predict(images):
      inputs = images if backbone is None else backbone(images,
                                                        training=False)
      _, h, logits = model.embed(inputs, training=False)
      probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
      class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int32)
      return {"probabilities": probabilities,
              "class_id": class_ids,
              "class_name": tf.gather(self.class_names, class_ids),
              "embedding": tf.cast(h, tf.float32)}

    # Unknown rank in the signatures so that a wrong rank reaches the
    # assertions below (with a message) instead of failing argument binding;
    # TF Serving does not check fed shapes against a signature either.
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, "images")])
    def serve_images(images):
      shape = tf.shape(images)
      # Padded so that the comparison is defined whatever the rank.
      padded = tf.concat([shape, tf.zeros([4], tf.int32)], axis=0)
      shape_ok = _check(
          tf.logical_and(tf.equal(tf.size(shape), 4),
                         tf.reduce_all(tf.equal(padded[1:4], image_shape))),
          tf.strings.format(
              "images must be a float32 batch of shape [batch, {}, {}, {}] "
              "(pixels in [0, 255] at the training size; the "
              f"{IMAGE_BYTES_SIGNATURE} signature takes other sizes); "
              "received shape {}", list(image_shape) + [shape]))
      with tf.control_dependencies([shape_ok]):
        batch_ok = _check(tf.greater(padded[0], 0),
                          "images must hold at least one image; received an "
                          "empty batch")
      with tf.control_dependencies([batch_ok]):
        images = tf.ensure_shape(tf.identity(images),
                                 (None,) + image_shape)
      return predict(images)

    @tf.function(
        input_signature=[tf.TensorSpec(None, tf.string, "image_bytes")])
    def serve_image_bytes(image_bytes):
      shape = tf.shape(image_bytes)
      shape_ok = _check(
          tf.logical_and(tf.equal(tf.size(shape), 1),
                         tf.greater(tf.size(image_bytes), 0)),
          tf.strings.format(
              "image_bytes must be a non-empty 1-D batch of encoded images, "
              "shape [batch]; received shape {}", [shape]))
      with tf.control_dependencies([shape_ok]):
        image_bytes = tf.reshape(image_bytes, [-1])

      def decode(element):
        index, encoded = element
        known = tf.reduce_any([
            tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)
            for magic in MAGIC_NUMBERS])
        format_ok = _check(known, tf.strings.format(
            "image_bytes[{}] ({} bytes) is not a JPEG, PNG, GIF or BMP image",
            [index, tf.strings.length(encoded)]))
        with tf.control_dependencies([format_ok]):
          image = tf.io.decode_image(encoded, channels=transform.channels,
                                     expand_animations=False)
        image.set_shape([None, None, transform.channels])
        return transform.eval(image)

      indices = tf.range(tf.size(image_bytes))
      images = tf.map_fn(
          decode, (indices, image_bytes),
          fn_output_signature=tf.TensorSpec(image_shape, tf.float32))
      return predict(images)

    self.serve_images = serve_images
    self.serve_image_bytes = serve_image_bytes
    # Only the variables the signatures read are saved: tracking `model`
    # itself would also save its optimizer slots (momentum doubles the
    # size), per-example training tables and cluster centres, none of
    # which serving needs. Each variable is listed once.
    captured = {}
    for function in (serve_images, serve_image_bytes):
      for variable in function.get_concrete_function().variables:
        captured.setdefault(id(variable), variable)
    self.serving_variables = list(captured.values())


def _check_inputs(model, class_names, transform, backbone):
  """Validates the export arguments; returns the image transform."""
  if len(class_names) != model.num_classes:
    raise ValueError(
        f"{len(class_names)} class names {list(class_names)} for a model of "
        f"{model.num_classes} classes")
  if backbone is not None:
    if model.backbone is not None:
      raise ValueError(
          "backbone= was given but the model has its own backbone "
          f"{model.backbone.name!r}; pass backbone= only for a model trained "
          "on backbone features")
    feature_dim = int(backbone.output.shape[-1])
    if (feature_dim,) != tuple(model.input_shape_):
      raise ValueError(
          f"backbone {backbone.name!r} outputs {feature_dim} features but the "
          f"model takes inputs of shape {tuple(model.input_shape_)}")
    image_shape = tuple(int(d) for d in backbone.input_shape[1:])
  elif model.backbone is None:
    raise ValueError(
        "the model takes backbone features (it has no backbone); pass the "
        "backbone it was trained with as backbone= so that the export takes "
        "images")
  else:
    image_shape = tuple(model.input_shape_)
  if transform is None:
    if len(image_shape) != 3 or image_shape[0] != image_shape[1]:
      raise ValueError(
          f"cannot infer an image transform from input shape {image_shape}; "
          "pass transform=")
    transform = transforms.ImageTransform(image_size=image_shape[0],
                                          channels=image_shape[2])
  if tuple(transform.shape) != image_shape:
    raise ValueError(
        f"transform produces images of shape {tuple(transform.shape)} but the "
        f"model takes {image_shape}")
  return transform


def make_world_readable(root):
  """Sets folders under `root` (itself included) to 0755 and files to 0644.

  `tempfile.mkdtemp` creates 0700 folders and the user's umask may strip
  more; TF Serving often runs as another user, which must read every
  version.

  Args:
    root: a folder.
  """
  os.chmod(root, 0o755)
  for folder, names, files in os.walk(root):
    for name in names:
      os.chmod(os.path.join(folder, name), 0o755)
    for name in files:
      os.chmod(os.path.join(folder, name), 0o644)


def export_saved_model(model, export_base, class_names, transform=None,
                       backbone=None):
  """Writes `model` as `export_base/<next version>/`, atomically.

  The SavedModel is written into a temporary folder beside the target, made
  world-readable (folders 0755, files 0644, whatever the umask) and
  renamed into place, so TF Serving never sees a half-written version and
  an existing version is never overwritten (a concurrent export that took
  the same number moves on to the next one).

  Args:
    model: an `SRDCModel`.
    export_base: folder of versions, e.g. `saved_models/<name>`.
    class_names: the K class names, in label order; stored in the export.
    transform: the run's `ImageTransform`, whose evaluation view
      `serve_image_bytes` applies. None: resize straight to the model's
      (square) input size.
    backbone: for a model trained on backbone features (no backbone of its
      own), the `keras.Model` that computes them from images; it is
      prepended so that the export takes images.

  Returns:
    The path of the new version.

  Raises:
    ValueError: the class names, transform or backbone do not fit the model.
  """
  transform = _check_inputs(model, class_names, transform, backbone)
  module = _ServingModule(model, class_names, transform, backbone)
  signatures = {IMAGES_SIGNATURE: module.serve_images,
                IMAGE_BYTES_SIGNATURE: module.serve_image_bytes}
  os.makedirs(export_base, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".export-", dir=export_base)
  try:
    tf.saved_model.save(module, staging, signatures=signatures)
    make_world_readable(staging)
    for _ in range(_MAX_VERSION_ATTEMPTS):
      final = os.path.join(export_base, str(next_version(export_base)))
      try:
        # rename() fails on an existing non-empty folder (every version is
        # one), which is what makes taking a version number race-free.
        os.rename(staging, final)
        return final
      except OSError:
        if not os.path.isdir(final):
          raise
    raise RuntimeError(f"no free version number under {export_base!r}")
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def exported_transform(loaded):
  """The `ImageTransform` an export applies to encoded images.

  Args:
    loaded: the result of `tf.saved_model.load` on an export.

  Returns:
    An `ImageTransform` (its `eval` view gives `serving_default` inputs).
  """
  resize_size = int(loaded.resize_size.numpy())
  return transforms.ImageTransform(
      image_size=int(loaded.image_size.numpy()),
      channels=int(loaded.channels.numpy()),
      resize_size=resize_size or None)


def exported_class_names(loaded):
  """The class names stored in an export, in label order."""
  return tuple(name.decode("utf-8") for name in loaded.class_names.numpy())
