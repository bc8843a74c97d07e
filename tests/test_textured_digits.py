"""The textured-digits hard shift: the blend on small generated digits and,
when MNIST is prepared, the `textured:` spec on it."""

import os

import numpy as np
import pytest

from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import textured_digits
from srdc_tf.data import transforms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SRDC_SHARED_DIR",
                        os.path.join(os.path.dirname(REPO), "shared"))
TFDS_DIR = os.environ.get("TFDS_DATA_DIR") or os.path.join(
    SHARED, "data", "tfds")
needs_mnist = pytest.mark.skipif(
    not os.path.isdir(os.path.join(TFDS_DIR, "mnist")),
    reason=f"no prepared TFDS MNIST under {TFDS_DIR} ($TFDS_DATA_DIR)")


def _digits(count, height=28, width=28, seed=0):
  """Bright bars on black, MNIST's value range: stand-ins for digits."""
  rng = np.random.default_rng(seed)
  digits = np.zeros((count, height, width), np.uint8)
  for image in digits:
    top, left = rng.integers(2, height // 2), rng.integers(2, width // 2)
    image[top:top + height // 3, left:left + 3] = 255
    image[top:top + 2, left:left + width // 3] = rng.integers(128, 256)
  return digits


def test_composite_is_deterministic_and_seeded():
  digits = _digits(40)
  first = textured_digits.composite(digits, seed=7)
  np.testing.assert_array_equal(first, textured_digits.composite(digits, 7))
  assert (first != textured_digits.composite(digits, 8)).mean() > 0.9


@pytest.mark.parametrize("shape", [(5, 28, 28), (5, 28, 28, 1), (3, 16, 20)])
def test_composite_shapes_and_dtype(shape):
  digits = _digits(shape[0], shape[1], shape[2]).reshape(shape)
  out = textured_digits.composite(digits, seed=1)
  assert out.shape == (shape[0], shape[1], shape[2], 3)
  assert out.dtype == np.uint8


@pytest.mark.parametrize("digits, message", [
    (np.zeros((2, 28, 28), np.float32), "uint8"),
    (np.zeros((2, 28, 28, 3), np.uint8), r"\(2, 28, 28, 3\)"),
    (np.zeros((28, 28), np.uint8), r"\(28, 28\)"),
])
def test_composite_rejects_other_inputs(digits, message):
  with pytest.raises(ValueError, match=message):
    textured_digits.composite(digits, seed=0)


def test_image_is_the_mnist_m_blend_of_texture_and_digit():
  digits = _digits(30)
  texture = textured_digits.textures(30, 28, 28, seed=3).astype(int)
  out = textured_digits.composite(digits, seed=3).astype(int)
  np.testing.assert_array_equal(out, np.abs(texture - digits[..., None]))
  # The digit is recoverable given the texture: |image - texture| is zero
  # off the strokes and |255 - 2 texture| on them.
  residual = np.abs(out - texture).mean(axis=-1).reshape(30, -1)
  flat = digits.reshape(30, -1).astype(float)
  correlations = [np.corrcoef(r, d)[0, 1] for r, d in zip(residual, flat)]
  assert np.mean(correlations) > 0.6, correlations


def test_textures_vary_strongly_between_and_within_images():
  texture = textured_digits.textures(500, 28, 28, seed=0).astype(float)
  mean_colour = texture.mean(axis=(1, 2))  # [500, 3]
  # Background colour: spread over images, per channel (a fixed background
  # would give 0).
  assert np.all(mean_colour.std(axis=0) > 15), mean_colour.std(axis=0)
  # Colour, not grey: the channels of an image's mean differ (median 17).
  assert np.median(mean_colour.std(axis=1)) > 10
  # Texture within an image (median standard deviation 9.9, the grain
  # alone 6), and contrast that differs between images.
  inner = texture.std(axis=(1, 2)).mean(axis=-1)
  assert np.median(inner) > 8, np.median(inner)
  assert np.percentile(inner, 90) > 1.5 * np.percentile(inner, 10)


def test_texture_depends_on_seed_and_index_only():
  count = textured_digits.BLOCK + 3  # Across a block boundary.
  many = textured_digits.textures(count, 28, 28, seed=5)
  np.testing.assert_array_equal(
      textured_digits.textures(4, 28, 28, seed=5), many[:4])
  digits = _digits(count)
  np.testing.assert_array_equal(
      textured_digits.composite(digits[:10], 5),
      textured_digits.composite(digits, 5)[:10])


def test_split_seed_is_fixed_per_split():
  assert textured_digits.split_seed("mnist", "train") == 3396615377
  assert (textured_digits.split_seed("mnist", "train")
          != textured_digits.split_seed("mnist", "test"))


def test_textures_are_pinned():
  # The benchmark's target images: a change here changes the measured
  # numbers of every textured run (update the README's table with them).
  texture = textured_digits.textures(8, 28, 28, seed=0)
  assert int(texture.astype(np.int64).sum()) == 2140774
  assert texture[0, 0, 0].tolist() == [122, 94, 109]
  assert texture[7, 27, 27].tolist() == [123, 31, 185]


def test_missing_mnist_is_named_with_the_spec(tmp_path):
  with pytest.raises(ValueError) as error:
    sources.load_domain("textured:mnist:train", tfds_data_dir=str(tmp_path))
  message = str(error.value)
  assert "'textured:mnist:train'" in message
  assert "--tfds_data_dir" in message and str(tmp_path) in message


def test_textured_spec_without_dataset_is_named():
  with pytest.raises(ValueError, match="'textured:' names no dataset"):
    sources.load_domain("textured:")


@pytest.mark.shared_data
@needs_mnist
def test_textured_mnist_spec_composites_the_mnist_split():
  mnist = sources.load_domain("tfds:mnist:test", tfds_data_dir=TFDS_DIR)
  textured = sources.load_domain("textured:mnist:test",
                                 tfds_data_dir=TFDS_DIR, seed=0)
  assert textured.name == "textured:mnist:test"
  assert textured.images.shape == (10000, 28, 28, 3)
  assert textured.images.dtype == np.uint8
  np.testing.assert_array_equal(textured.labels, mnist.labels)
  assert textured.class_names == mnist.class_names
  np.testing.assert_array_equal(
      textured.images, textured_digits.composite(
          mnist.images, textured_digits.split_seed("mnist", "test")))
  # Not the run's seed: every run and seed sees the same images.
  other_run = sources.load_domain("textured:mnist:test",
                                  tfds_data_dir=TFDS_DIR, seed=3)
  np.testing.assert_array_equal(other_run.images, textured.images)
  # Class alignment with the MNIST source keeps the ids.
  _, aligned = sources.align_classes(mnist, textured)
  np.testing.assert_array_equal(aligned.labels, mnist.labels)


@pytest.mark.shared_data
@needs_mnist
def test_grey_source_and_textured_target_share_three_channels():
  mnist = sources.load_domain("tfds:mnist:test", tfds_data_dir=TFDS_DIR)
  textured = sources.load_domain("textured:mnist:test",
                                 tfds_data_dir=TFDS_DIR)
  transform = transforms.ImageTransform(28, channels=3, random_translate=4,
                                        random_rotation=10)
  batch = next(iter(pipeline.train_dataset(mnist, textured, 8, transform)))
  source, target = (np.asarray(batch[k])
                    for k in ("source_image", "target_image"))
  assert source.shape == target.shape == (8, 28, 28, 3)
  # The grey source is replicated to three equal channels.
  np.testing.assert_array_equal(source[..., 0], source[..., 1])
  np.testing.assert_array_equal(source[..., 0], source[..., 2])
  assert np.abs(target[..., 0] - target[..., 1]).max() > 0
