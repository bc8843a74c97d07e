"""Tests of srdc_tf.serving: versions, size, signatures, errors, and serving
the export without srdc_tf."""

import io
import os
import socket
import subprocess
import textwrap
import time

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf.data import transforms
from srdc_tf.data import validation
from srdc_tf.models import build_backbone
from srdc_tf.models import SRDCModel

import serving_testlib as lib


@pytest.fixture(scope="module")
def model():
  return lib.tiny_model()


@pytest.fixture(scope="module")
def export(model):
  return serving.export_saved_model(model, lib.work_dir("export"),
                                    lib.CLASS_NAMES)


@pytest.fixture(scope="module")
def signatures(export):
  loaded = tf.saved_model.load(export)
  return (loaded.signatures[serving.IMAGES_SIGNATURE],
          loaded.signatures[serving.IMAGE_BYTES_SIGNATURE])


def _expected(model, images):
  """What the exported signatures should return, from the Keras model."""
  _, h, logits = model.embed(tf.constant(images), training=False)
  probabilities = tf.nn.softmax(logits).numpy()
  ids = probabilities.argmax(axis=1)
  return {"probabilities": probabilities, "class_id": ids,
          "class_name": np.array([lib.CLASS_NAMES[i] for i in ids]),
          "embedding": h.numpy()}


def _assert_outputs_match(outputs, expected):
  np.testing.assert_allclose(outputs["probabilities"],
                             expected["probabilities"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(outputs["embedding"], expected["embedding"],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(outputs["class_id"], expected["class_id"])
  names = [n.decode() if isinstance(n, bytes) else str(n)
           for n in outputs["class_name"]]
  assert names == list(expected["class_name"])


# === Versions ===

def test_versions_count_up_and_never_overwrite(model):
  base = lib.work_dir("versions")
  first = serving.export_saved_model(model, base, lib.CLASS_NAMES)
  pb = os.path.join(first, "saved_model.pb")
  before = (os.path.getmtime(pb), os.path.getsize(pb))
  second = serving.export_saved_model(model, base, lib.CLASS_NAMES)
  assert (first, second) == (os.path.join(base, "1"), os.path.join(base, "2"))
  assert (os.path.getmtime(pb), os.path.getsize(pb)) == before
  assert sorted(os.listdir(base)) == ["1", "2"]  # No staging folder left.
  assert serving.next_version(base) == 3


def test_a_version_taken_meanwhile_is_skipped(model, monkeypatch):
  # Another exporter takes version 1 after this one chose it: the rename
  # must not replace it, and the export moves on to the next number.
  base = lib.work_dir("race")
  os.makedirs(os.path.join(base, "1"))
  with open(os.path.join(base, "1", "other"), "w") as f:
    f.write("another export")
  real_next_version = serving.next_version
  answers = iter([1])
  monkeypatch.setattr(serving, "next_version",
                      lambda b: next(answers, None) or real_next_version(b))
  path = serving.export_saved_model(model, base, lib.CLASS_NAMES)
  assert path == os.path.join(base, "2")
  assert os.listdir(os.path.join(base, "1")) == ["other"]
  assert sorted(os.listdir(base)) == ["1", "2"]


def test_a_failed_export_leaves_no_version(model, monkeypatch):
  base = lib.work_dir("failed")

  def half_write(module, staging, signatures):
    del module, signatures
    with open(os.path.join(staging, "saved_model.pb"), "w") as f:
      f.write("half")
    raise OSError("disk full")

  monkeypatch.setattr(tf.saved_model, "save", half_write)
  with pytest.raises(OSError, match="disk full"):
    serving.export_saved_model(model, base, lib.CLASS_NAMES)
  assert os.listdir(base) == []


def test_staging_folders_of_dead_exports_are_cleaned_up(model):
  base = lib.work_dir("stale")
  host = socket.gethostname()
  dead = subprocess.Popen(["true"])  # pylint: disable=consider-using-with
  dead.wait()
  names = {
      f".export-{host}-{dead.pid}-a1b2": "removed",  # Its process died.
      f".export-{host}-{os.getpid()}-c3d4": "kept",  # A live export.
      ".export-otherhost-12-e5f6": "kept",  # Another host's, recent.
      ".export-otherhost-12-g7h8": "removed",  # Another host's, 2 days old.
      ".export-k9l0": "removed",  # The earlier naming, 2 days old.
  }
  for name, fate in names.items():
    os.makedirs(os.path.join(base, name, "variables"))
    if name.endswith(("g7h8", "k9l0")):
      old = time.time() - 2 * 24 * 3600
      os.utime(os.path.join(base, name), (old, old))
  assert sorted(serving.stale_staging(base)) == sorted(
      os.path.join(base, n) for n, fate in names.items() if fate == "removed")
  serving.export_saved_model(model, base, lib.CLASS_NAMES)
  assert sorted(os.listdir(base)) == sorted(
      ["1"] + [n for n, fate in names.items() if fate == "kept"])


# === Size ===

def test_each_weight_is_stored_once(model, export):
  weights = os.path.join(lib.work_dir("weights"), "model.weights.h5")
  model.save_weights(weights)
  exported = lib.folder_size(os.path.join(export, "variables"))
  assert abs(exported - os.path.getsize(weights)) <= 0.1 * os.path.getsize(
      weights), (exported, os.path.getsize(weights))


def test_a_trained_model_exports_without_optimizer_state():
  # The run's model carries SGD momentum (as many values as the weights);
  # serving needs none of it.
  settings, _, result = lib.trained_run()
  weights = os.path.join(lib.work_dir("trained_weights"), "w.weights.h5")
  run_files.load_model(settings.model_dir).save_weights(weights)  # No optimizer.
  exported = lib.folder_size(os.path.join(result["export"], "variables"))
  assert abs(exported - os.path.getsize(weights)) <= 0.1 * os.path.getsize(
      weights), (exported, os.path.getsize(weights))


# === Signatures ===

def test_exported_settings_round_trip(model):
  transform = transforms.ImageTransform(image_size=32, resize_size=40)
  export = serving.export_saved_model(model, lib.work_dir("settings"),
                                      lib.CLASS_NAMES, transform=transform)
  loaded = tf.saved_model.load(export)
  assert serving.exported_transform(loaded) == transform
  assert serving.exported_class_names(loaded) == lib.CLASS_NAMES
  # Encoded images of another size go through the evaluation view: resize
  # the shorter side to 40, centre crop 32.
  image = lib.pixel_images(1, shape=(48, 60, 3), seed=3)[0]
  encoded = tf.io.encode_png(image.astype(np.uint8))
  view = transform.eval(tf.io.decode_png(encoded, channels=3)).numpy()
  outputs = loaded.signatures[serving.IMAGE_BYTES_SIGNATURE](
      image_bytes=tf.stack([encoded]))
  _assert_outputs_match({k: v.numpy() for k, v in outputs.items()},
                        _expected(model, view[None]))


def test_served_without_srdc_tf_matches_the_model(model, export):
  """Loads the export in a fresh interpreter that cannot import srdc_tf and
  calls both signatures."""
  folder = lib.work_dir("fresh")
  images = lib.pixel_images(3)
  other_size = lib.pixel_images(1, shape=(45, 27, 3), seed=1)[0]
  grey = lib.pixel_images(1, shape=(32, 32, 1), seed=2)[0]
  encoded = [
      tf.io.encode_png(images[0].astype(np.uint8)).numpy(),
      tf.io.encode_jpeg(other_size.astype(np.uint8), quality=90).numpy(),
      tf.io.encode_png(grey.astype(np.uint8)).numpy(),
  ]
  np.save(os.path.join(folder, "images.npy"), images)
  np.save(os.path.join(folder, "encoded.npy"), np.array(encoded, dtype=object),
          allow_pickle=True)
  code = textwrap.dedent(f"""
      import sys
      try:
        import srdc_tf
      except ModuleNotFoundError:
        pass
      else:
        raise SystemExit("srdc_tf is importable: " + srdc_tf.__file__)
      import numpy as np
      import tensorflow as tf
      loaded = tf.saved_model.load({export!r})
      images = np.load({folder!r} + "/images.npy")
      encoded = np.load({folder!r} + "/encoded.npy", allow_pickle=True)
      results = {{}}
      for prefix, name, feed in (
          ("images", "serving_default", {{"images": tf.constant(images)}}),
          ("bytes", "serve_image_bytes",
           {{"image_bytes": tf.constant(list(encoded))}})):
        for key, value in loaded.signatures[name](**feed).items():
          results[prefix + "/" + key] = value.numpy()
      np.savez({folder!r} + "/outputs.npz", **results)
      print("served", sorted(results))
      """)
  done = lib.run_python(["-c", code], cwd="/tmp", isolated=True)
  assert done.returncode == 0, done.stdout + done.stderr
  outputs = np.load(os.path.join(folder, "outputs.npz"), allow_pickle=True)

  def part(prefix):
    return {key: outputs[f"{prefix}/{key}"] for key in serving.OUTPUT_KEYS}

  _assert_outputs_match(part("images"), _expected(model, images))
  # What the graph should do with each encoded image: decode to 3 channels
  # (grey is repeated), resize to 32x32 as evaluation does.
  transform = transforms.ImageTransform(image_size=32)
  views = np.stack([transform.eval(tf.io.decode_image(
      data, channels=3, expand_animations=False)).numpy()
                    for data in encoded])
  np.testing.assert_array_equal(views[0], images[0])  # PNG is lossless.
  np.testing.assert_array_equal(views[2], np.repeat(grey, 3, axis=-1))
  _assert_outputs_match(part("bytes"), _expected(model, views))


@pytest.mark.e2e
def test_saved_model_cli_lists_both_signatures(export):
  done = lib.run_python(
      [os.path.join(os.path.dirname(lib.PYTHON), "saved_model_cli"), "show",
       "--all", "--dir", export])
  assert done.returncode == 0, done.stderr
  text = done.stdout
  for name in (serving.IMAGES_SIGNATURE, serving.IMAGE_BYTES_SIGNATURE):
    assert f"signature_def['{name}']" in text
  for name in ("inputs['images']", "inputs['image_bytes']") + tuple(
      f"outputs['{key}']" for key in serving.OUTPUT_KEYS):
    assert name in text, name
  assert "dtype: DT_STRING" in text and "dtype: DT_FLOAT" in text


# === Wrong inputs ===

def _png(shape):
  return tf.io.encode_png(np.zeros(shape, np.uint8)).numpy()


@pytest.mark.parametrize("signature, feed, message", [
    ("images", tf.zeros([2, 32, 32]),
     r"shape \[batch, 32, 32, 3\].*received shape \[2 32 32\]"),
    ("images", tf.zeros([1, 2, 32, 32, 3]),
     r"shape \[batch, 32, 32, 3\].*received shape \[1 2 32 32 3\]"),
    ("images", tf.zeros([2, 32, 32, 1]),
     r"shape \[batch, 32, 32, 3\].*received shape \[2 32 32 1\]"),
    ("images", tf.zeros([2, 28, 28, 3]),
     r"serve_image_bytes signature takes other sizes.*received shape "
     r"\[2 28 28 3\]"),
    ("images", tf.zeros([0, 32, 32, 3]), "at least one image"),
    ("images", tf.zeros([2, 32, 32, 3], tf.int32),
     "expected to be a float tensor but is a int32 tensor"),
    ("images", tf.zeros([2, 32, 32, 3], tf.uint8),
     "expected to be a float tensor but is a uint8 tensor"),
    ("bytes", tf.zeros([2]),
     "expected to be a string tensor but is a float tensor"),
    ("bytes", tf.constant(_png([8, 8, 3])),
     r"1-D batch of encoded images.*received shape \[\]"),
    ("bytes", tf.constant([[_png([8, 8, 3])]]),
     r"1-D batch of encoded images.*received shape \[1 1\]"),
    ("bytes", tf.constant([], tf.string), r"non-empty.*received shape \[0\]"),
    ("bytes", tf.constant([_png([8, 8, 3]), b"not an image"]),
     r"image_bytes\[1\] \(12 bytes\) is not a JPEG, PNG, GIF, BMP or WebP "
     "image"),
    ("bytes", tf.constant([b""]),
     r"image_bytes\[0\] \(0 bytes\) is not a JPEG"),
    # A known format but corrupt data: the decoder's own message.
    ("bytes", tf.constant([tf.io.encode_jpeg(
        np.zeros([16, 16, 3], np.uint8)).numpy()[:30]]), "JPEG data"),
], ids=["rank3", "rank5", "channels", "size", "empty", "int32", "uint8",
        "bytes_float", "bytes_scalar", "bytes_rank2", "bytes_empty",
        "bytes_garbage", "bytes_zero_length", "bytes_truncated_jpeg"])
def test_wrong_inputs_get_a_clear_error(signatures, signature, feed,
                                        message):
  images, image_bytes = signatures
  with pytest.raises(tf.errors.InvalidArgumentError, match=message):
    if signature == "images":
      images(images=feed)
    else:
      image_bytes(image_bytes=feed)


def test_wrong_export_arguments_are_rejected(model):
  base = lib.work_dir("bad_arguments")
  with pytest.raises(ValueError, match=r"2 class names \['a', 'b'\] for a "
                     "model of 6 classes"):
    serving.export_saved_model(model, base, ["a", "b"])
  with pytest.raises(ValueError, match=r"shape \(28, 28, 3\) but the model "
                     r"takes \(32, 32, 3\)"):
    serving.export_saved_model(model, base, lib.CLASS_NAMES,
                               transform=transforms.ImageTransform(28))
  with pytest.raises(ValueError, match="has its own backbone"):
    serving.export_saved_model(model, base, lib.CLASS_NAMES,
                               backbone=build_backbone("lenet", (32, 32, 3)))
  assert os.listdir(base) == []


# === Models trained on backbone features ===

def test_a_feature_model_is_exported_behind_its_backbone():
  keras.utils.set_random_seed(1)
  backbone = build_backbone("lenet", (32, 32, 3), trainable=False)
  head = SRDCModel(None, num_classes=len(lib.CLASS_NAMES), input_shape=(500,),
                   num_source_examples=10, num_target_examples=10,
                   bottleneck_dim=lib.BOTTLENECK)
  base = lib.work_dir("features")
  with pytest.raises(ValueError, match="pass the backbone"):
    serving.export_saved_model(head, base, lib.CLASS_NAMES)
  with pytest.raises(ValueError, match="outputs 500 features but the model "
                     r"takes inputs of shape \(400,\)"):
    serving.export_saved_model(
        SRDCModel(None, len(lib.CLASS_NAMES), (400,), 10, 10,
                  bottleneck_dim=8), base, lib.CLASS_NAMES, backbone=backbone)
  export = serving.export_saved_model(head, base, lib.CLASS_NAMES,
                                      backbone=backbone)
  loaded = tf.saved_model.load(export)
  images = lib.pixel_images(4, seed=5)
  features = backbone(images, training=False)
  _, h, logits = head.embed(features, training=False)
  outputs = loaded.signatures[serving.IMAGES_SIGNATURE](
      images=tf.constant(images))
  np.testing.assert_allclose(outputs["probabilities"].numpy(),
                             tf.nn.softmax(logits).numpy(), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(outputs["embedding"].numpy(), h.numpy(),
                             rtol=1e-5, atol=1e-5)
  encoded = tf.stack([tf.io.encode_png(image.astype(np.uint8))
                      for image in images])
  from_bytes = loaded.signatures[serving.IMAGE_BYTES_SIGNATURE](
      image_bytes=encoded)
  np.testing.assert_allclose(from_bytes["probabilities"].numpy(),
                             outputs["probabilities"].numpy(), rtol=1e-5,
                             atol=1e-6)
  # Backbone and head weights, each once.
  weights = os.path.join(lib.work_dir("feature_weights"), "w.weights.h5")
  head.save_weights(weights)
  expected = os.path.getsize(weights) + 4 * backbone.count_params()
  exported = lib.folder_size(os.path.join(export, "variables"))
  assert abs(exported - expected) <= 0.1 * expected, (exported, expected)


# === Pixel values, formats and decoded size ===

@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -1.0, 255.5,
                                   1e30], ids=["nan", "inf", "minus_inf",
                                               "negative", "above_255",
                                               "huge"])
def test_non_finite_or_out_of_range_pixels_are_refused(signatures, value):
  images, _ = signatures
  pixels = lib.pixel_images(2)
  pixels[1, 3, 4, 0] = value
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"images must be raw pixels in \[0, 255\]"):
    images(images=tf.constant(pixels))


def test_pixels_at_the_ends_of_the_range_are_served(signatures):
  images, _ = signatures
  pixels = np.zeros((2,) + lib.IMAGE_SHAPE, np.float32)
  pixels[1] = 255.0
  assert images(images=tf.constant(pixels))["class_id"].shape == (2,)


def _encode(image, fmt, **options):
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, fmt, **options)
  return buffer.getvalue()


# Every format training accepts (validation.IMAGE_SIGNATURES), in each
# header variant: WebP's lossy (VP8), lossless (VP8L) and extended (VP8X).
_FORMATS = {
    "png": ("PNG", {}), "jpeg": ("JPEG", {"quality": 95}), "gif": ("GIF", {}),
    "bmp": ("BMP", {}), "webp_lossy": ("WEBP", {"quality": 90}),
    "webp_lossless": ("WEBP", {"lossless": True}),
    "webp_extended": ("WEBP", {"quality": 90}),  # With alpha: VP8X.
}


@pytest.fixture(scope="module")
def small_limit_export(model):
  """An export that decodes at most 60 x 48 pixels."""
  return tf.saved_model.load(serving.export_saved_model(
      model, lib.work_dir("limit"), lib.CLASS_NAMES,
      max_decoded_pixels=60 * 48))


@pytest.mark.parametrize("name", sorted(_FORMATS))
def test_every_training_format_is_served_and_its_size_capped(
    small_limit_export, name):
  fmt, options = _FORMATS[name]
  image = lib.pixel_images(1, shape=(48, 60, 3), seed=4)[0].astype(np.uint8)
  if fmt == "GIF":
    image = image // 64 * 64  # Few colours: no dithering.
  if name == "webp_extended":
    image = np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
  encoded = _encode(image, fmt, **options)
  if name.startswith("webp"):
    assert encoded[12:16] == {"webp_lossy": b"VP8 ", "webp_lossless": b"VP8L",
                              "webp_extended": b"VP8X"}[name]
  assert validation.image_format(encoded) is not None
  serve = small_limit_export.signatures[serving.IMAGE_BYTES_SIGNATURE]
  served = serve(image_bytes=tf.constant([encoded]))
  # Decoded as training decodes it (`Domain.load`), then resized.
  view = transforms.ImageTransform(image_size=32).eval(
      transforms.decode_image(encoded, 3))
  np.testing.assert_array_equal(
      served["class_id"].numpy(),
      small_limit_export.signatures[serving.IMAGES_SIGNATURE](
          images=view[None])["class_id"].numpy())
  bigger = _encode(np.concatenate([image, image[:1]]), fmt, **options)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"image_bytes\[1\] announces 60x49 pixels; a "
                     r"request image may have 1 to 2880 pixels"):
    serve(image_bytes=tf.constant([encoded, bigger]))


def test_a_huge_image_is_refused_from_its_header(signatures):
  _, image_bytes = signatures
  png = bytearray(_png([8, 8, 3]))
  # IHDR's width and height (big-endian, bytes 16-23): 30000 x 25000, 2.2
  # GB decoded; the rest of the file stays an 8 x 8 image.
  png[16:24] = (30000).to_bytes(4, "big") + (25000).to_bytes(4, "big")
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"image_bytes\[0\] announces 30000x25000 pixels; "
                     r"a request image may have 1 to 16777216 pixels"):
    image_bytes(image_bytes=tf.constant([bytes(png)]))
