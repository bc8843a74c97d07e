"""Exports a trained model as a SavedModel for TF Serving.

The one export path of the project: `runner.run` and the `srdc_tf.export`
binary both call `export_saved_model`. An export is a plain SavedModel
(no `srdc_tf` import is needed to load or serve it) with two signatures:

- `serving_default`: `images`, float32 `[batch, H, W, C]` raw pixels in
  [0, 255] at the training size; the model does its own preprocessing.
  A NaN, an infinity or a pixel outside [0, 255] fails the request.
- `serve_image_bytes`: `image_bytes`, a `[batch]` string tensor of encoded
  JPEG, PNG, GIF, BMP or WebP images (the formats training accepts,
  `validation.IMAGE_SIGNATURES`) of any size, grey or colour; they are
  decoded and resized in the graph exactly as evaluation does
  (`ImageTransform.eval`). An image whose header announces more than
  `max_decoded_pixels` pixels (width x height) fails the request before
  it is decoded.

Both return `probabilities` `[batch, K]`, `class_id` `[batch]`,
`class_name` `[batch]` and `embedding` (the penultimate feature `h`,
`[batch, bottleneck_dim]`). Malformed inputs fail with an
`InvalidArgumentError` that says what was expected and what was received.
"""

import os
import re
import shutil
import socket
import tempfile
import time

import tensorflow as tf

from srdc_tf import write_guard
from srdc_tf.data import transforms
from srdc_tf.data import validation

IMAGES_SIGNATURE = "serving_default"
IMAGE_BYTES_SIGNATURE = "serve_image_bytes"
OUTPUT_KEYS = ("probabilities", "class_id", "class_name", "embedding")

# The valid range of `serving_default`'s raw pixels.
PIXEL_RANGE = (0.0, 255.0)
# Default cap of an encoded image's width x height in `serve_image_bytes`:
# 16.8 million pixels (4096 x 4096), 50 MB decoded as 8-bit RGB. A 1 MB
# PNG can announce 30000 x 25000 pixels (2.2 GB); it is refused from its
# header, before decoding.
MAX_DECODED_PIXELS = 4096 * 4096

# Staging folders of exports: `<prefix><host>-<pid>-<random>`. One of
# another host (or of an older naming) counts as left behind after this
# long without a change; an export takes seconds to minutes.
_STAGING_PREFIX = ".export-"
STALE_STAGING_SECONDS = 24 * 3600

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


def _pixels_ok(images):
  """An assertion that every pixel of `images` is finite and in
  `PIXEL_RANGE`; its message counts the bad values and gives the range
  received."""
  low, high = PIXEL_RANGE
  finite = tf.math.is_finite(images)
  bad_count = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int32))
  # NaN would poison min and max: the non-finite values count apart.
  smallest = tf.reduce_min(tf.where(finite, images, low))
  largest = tf.reduce_max(tf.where(finite, images, low))
  return _check(
      tf.logical_and(tf.equal(bad_count, 0),
                     tf.logical_and(smallest >= low, largest <= high)),
      tf.strings.format(
          f"images must be raw pixels in [{low:g}, {high:g}]; received {{}} "
          "NaN or infinite value(s), and finite values from {} to {}",
          [bad_count, smallest, largest]))


def _unsigned(header, start, count, big_endian=False):
  """The unsigned integer of `count` bytes of a uint8 `header` at `start`."""
  value = tf.constant(0, tf.int64)
  order = range(count) if big_endian else reversed(range(count))
  for i in order:
    value = value * 256 + tf.cast(header[start + i], tf.int64)
  return value


def _header_size(encoded, known):
  """`(width, height)` that an encoded image's header announces, as int64,
  read without decoding it (0 x 0 for an unknown format).

  Args:
    encoded: a scalar string, starting with one of the signatures of
      `validation.IMAGE_SIGNATURES`.
    known: a dict of format name -> a boolean scalar, whether `encoded` is
      of that format.
  """
  padded = tf.strings.join([tf.strings.substr(encoded, 0, 32), b"\0" * 32])
  header = tf.io.decode_raw(tf.strings.substr(padded, 0, 32), tf.uint8)

  def signed32(start):
    value = _unsigned(header, start, 4)
    return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

  chunk = tf.strings.substr(padded, 12, 4)
  lossless_bits = _unsigned(header, 21, 4)
  webp_width = tf.where(
      tf.equal(chunk, b"VP8X"), _unsigned(header, 24, 3) + 1,
      tf.where(tf.equal(chunk, b"VP8L"), lossless_bits % 2**14 + 1,
               _unsigned(header, 26, 2) % 2**14))
  webp_height = tf.where(
      tf.equal(chunk, b"VP8X"), _unsigned(header, 27, 3) + 1,
      tf.where(tf.equal(chunk, b"VP8L"),
               lossless_bits // 2**14 % 2**14 + 1,
               _unsigned(header, 28, 2) % 2**14))
  jpeg_shape = tf.cond(
      known["JPEG"],
      lambda: tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64),
      lambda: tf.zeros([3], tf.int64))
  sizes = [  # (format, width, height)
      ("JPEG", jpeg_shape[1], jpeg_shape[0]),
      ("PNG", _unsigned(header, 16, 4, True), _unsigned(header, 20, 4, True)),
      ("GIF", _unsigned(header, 6, 2), _unsigned(header, 8, 2)),
      ("BMP", signed32(18), signed32(22)),
      ("WebP", webp_width, webp_height)]
  width = height = tf.constant(0, tf.int64)
  for name, format_width, format_height in sizes:
    width = tf.where(known[name], format_width, width)
    height = tf.where(known[name], format_height, height)
  return width, height


class _ServingModule(tf.Module):
  """The exported object: two signatures and the settings they were built
  with (`class_names`, `image_size`, `resize_size` (0: none), `channels`),
  kept as variables so that a loader can read them back."""

  def __init__(self, model, class_names, transform, backbone=None,
               max_decoded_pixels=MAX_DECODED_PIXELS):
    super().__init__()
    self.class_names = tf.Variable(list(class_names), trainable=False,
                                   name="class_names")
    self.image_size = tf.Variable(transform.image_size, trainable=False,
                                  name="image_size")
    self.resize_size = tf.Variable(transform.resize_size or 0,
                                   trainable=False, name="resize_size")
    self.channels = tf.Variable(transform.channels, trainable=False,
                                name="channels")
    self.max_decoded_pixels = tf.Variable(
        int(max_decoded_pixels), trainable=False, dtype=tf.int64,
        name="max_decoded_pixels")
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
        pixels_ok = _pixels_ok(images)
      with tf.control_dependencies([pixels_ok]):
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
        known = validation.image_format_tensors(encoded)
        format_ok = _check(
            tf.reduce_any(list(known.values())), tf.strings.format(
                f"image_bytes[{{}}] ({{}} bytes) is not a "
                f"{validation.FORMATS} image",
                [index, tf.strings.length(encoded)]))
        with tf.control_dependencies([format_ok]):
          width, height = _header_size(encoded, known)
        size_ok = _check(
            tf.logical_and(width * height <= self.max_decoded_pixels,
                           width * height > 0),
            tf.strings.format(
                "image_bytes[{}] announces {}x{} pixels; a request image "
                "may have 1 to {} pixels (width x height, the export's "
                "max_decoded_pixels)",
                [index, width, height, self.max_decoded_pixels]))
        with tf.control_dependencies([size_ok]):
          image = transforms.decode_image(encoded, transform.channels)
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


def _staging_prefix():
  return f"{_STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-"


def stale_staging(export_base, now=None):
  """The staging folders under `export_base` left by exports that died.

  A staging folder is named `.export-<host>-<pid>-<random>`: it is stale
  when that process no longer runs on this host, or (another host's, or
  named otherwise) when it was last changed more than
  `STALE_STAGING_SECONDS` ago. The staging folder of a live export is
  never stale.

  Args:
    export_base: a folder of versions.
    now: the time to judge ages at (default: now).

  Returns:
    The paths of the stale folders, sorted.
  """
  if not os.path.isdir(export_base):
    return []
  now = time.time() if now is None else now
  host = socket.gethostname()
  stale = []
  for name in sorted(os.listdir(export_base)):
    path = os.path.join(export_base, name)
    if not name.startswith(_STAGING_PREFIX) or not os.path.isdir(path):
      continue
    match = re.fullmatch(re.escape(_STAGING_PREFIX) + r"(.*)-(\d+)-[^-]*",
                         name)
    try:
      old = now - os.path.getmtime(path) > STALE_STAGING_SECONDS
    except OSError:
      continue  # Removed meanwhile.
    if old or (match and match.group(1) == host
               and not write_guard.process_alive(int(match.group(2)))):
      stale.append(path)
  return stale


def export_saved_model(model, export_base, class_names, transform=None,
                       backbone=None, max_decoded_pixels=MAX_DECODED_PIXELS):
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
    max_decoded_pixels: the largest width x height `serve_image_bytes`
      decodes; a request image that announces more fails.

  Returns:
    The path of the new version.

  Raises:
    ValueError: the class names, transform or backbone do not fit the model.
    write_guard.WriteFailedError: the disk is full (checked before
      writing, from the size of the weights) or the export cannot be
      written; no version is added and the earlier ones stay.
  """
  transform = _check_inputs(model, class_names, transform, backbone)
  if max_decoded_pixels < 1:
    raise ValueError(
        f"max_decoded_pixels must be >= 1, got {max_decoded_pixels!r}")
  module = _ServingModule(model, class_names, transform, backbone,
                          max_decoded_pixels)
  signatures = {IMAGES_SIGNATURE: module.serve_images,
                IMAGE_BYTES_SIGNATURE: module.serve_image_bytes}
  what, intact = "the export", "the earlier versions are unchanged"
  with write_guard.guarded(what, export_base, intact):
    os.makedirs(export_base, exist_ok=True)
  for path in stale_staging(export_base):  # Left by exports that died.
    shutil.rmtree(path, ignore_errors=True)
  write_guard.check_room(
      export_base, write_guard.estimate_bytes(module.serving_variables),
      what, intact)
  staging = tempfile.mkdtemp(prefix=_staging_prefix(), dir=export_base)
  try:
    with write_guard.guarded(what, staging, intact, cleanup=staging):
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
