"""Tests of srdc_tf.data.transforms: resizing and augmentation."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.data import transforms


def _dot(size=9, row=1, col=7):
  image = np.zeros((size, size, 1), np.uint8)
  image[row, col] = 255
  return image


def _ink(image):
  return [tuple(int(v) for v in p)
          for p in np.argwhere(np.asarray(image)[..., 0] > 127)]


@pytest.mark.parametrize("degrees, expected", [
    (0.0, (1, 7)),
    # (row 1, col 7) is 3 right of and 3 above the centre (4, 4); a quarter
    # turn counter-clockwise puts it 3 above and 3 left of it: (1, 1).
    (90.0, (1, 1)),
    (180.0, (7, 1)),
    (-90.0, (7, 7)),
])
def test_warp_transform_turns_about_the_centre(degrees, expected):
  transform = transforms.warp_transform(math.radians(degrees), 9)
  out = keras.ops.image.affine_transform(
      _dot().astype(np.float32), transform, interpolation="nearest",
      fill_mode="constant", data_format="channels_last")
  assert _ink(out) == [expected]


@pytest.mark.parametrize("scale, shear", [(1.0, 0.0), (1.3, 0.0), (0.8, 0.2)])
def test_warp_transform_matches_hand_computation(scale, shear):
  angle = 0.3
  got = transforms.warp_transform(angle, 5, scale, shear).numpy()
  c, s = math.cos(angle) / scale, math.sin(angle) / scale
  t = math.tan(shear)
  a0, a1, b0, b1 = c, c * t - s, s, s * t + c
  np.testing.assert_allclose(
      got, [a0, a1, 2 - 2 * a0 - 2 * a1, b0, b1, 2 - 2 * b0 - 2 * b1, 0, 0],
      rtol=1e-6, atol=1e-6)


def test_warp_transform_without_zoom_or_slant_is_the_rotation_bitwise():
  # Runs from before --random_scale and --random_shear draw the same views.
  angle = tf.constant(0.3)
  cos, sin = tf.cos(angle), tf.sin(angle)
  before = tf.stack([cos, -sin, 2.0 - cos * 2.0 + sin * 2.0,
                     sin, cos, 2.0 - sin * 2.0 - cos * 2.0, 0.0, 0.0])
  np.testing.assert_array_equal(
      transforms.warp_transform(angle, 5, tf.exp(0.0), 0.0).numpy(),
      before.numpy())


@pytest.mark.parametrize("degrees, expected", [
    # (row 1, col 4) is 3 rows above the centre (4, 4): slanted by 45
    # degrees one way it moves 3 columns right, the other way 3 left.
    (45.0, (1, 7)),
    (-45.0, (1, 1)),
])
def test_warp_transform_slants_rows_by_their_height(degrees, expected):
  transform = transforms.warp_transform(0.0, 9, 1.0, math.radians(degrees))
  out = keras.ops.image.affine_transform(
      _dot(row=1, col=4).astype(np.float32), transform,
      interpolation="nearest", fill_mode="constant",
      data_format="channels_last")
  assert _ink(out) == [expected]


@pytest.mark.parametrize("scale, expected", [
    (1.0, (1, 7)),
    # (row 1, col 7) is 3 right of and 3 above the centre (4, 4): zoomed by
    # 1/3 it is 1 right of and 1 above it; by 4/3, 4 and 4.
    (1.0 / 3.0, (3, 5)),
    (4.0 / 3.0, (0, 8)),
])
def test_warp_transform_zooms_about_the_centre(scale, expected):
  transform = transforms.warp_transform(0.0, 9, scale)
  out = keras.ops.image.affine_transform(
      _dot().astype(np.float32), transform, interpolation="nearest",
      fill_mode="constant", data_format="channels_last")
  assert expected in _ink(out)


def test_random_scale_stays_within_its_range():
  # A centred square of side 5 in 21 pixels: its side times the zoom must
  # lie in [5 / 1.5, 5 * 1.5], and zooms both ways must occur.
  image = np.zeros((21, 21, 1), np.uint8)
  image[8:13, 8:13] = 255
  transform = transforms.ImageTransform(21, channels=1, random_scale=0.5)
  sides = []
  for seed in range(30):
    ink = np.argwhere(
        transform.train(image, tf.constant([seed, 7])).numpy()[..., 0] > 127)
    sides.append(ink[:, 0].max() - ink[:, 0].min() + 1)
  assert 5 / 1.5 - 1 <= min(sides) < 5 < max(sides) <= 5 * 1.5 + 1


def test_translation_shifts_without_wrapping():
  transform = transforms.ImageTransform(9, channels=1, random_translate=2)
  shifts = set()
  for seed in range(40):
    ink = _ink(transform.train(_dot(row=4, col=4), tf.constant([seed, 0])))
    assert len(ink) == 1
    shifts.add((ink[0][0] - 4, ink[0][1] - 4))
  assert shifts <= {(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)}
  assert len(shifts) > 10


def test_translation_can_push_content_out_of_the_frame():
  transform = transforms.ImageTransform(9, channels=1, random_translate=2)
  empty = sum(
      not _ink(transform.train(_dot(row=0, col=0), tf.constant([seed, 1])))
      for seed in range(40))
  assert empty > 0  # zero padding, not wrap-around or reflection


@pytest.mark.parametrize("fields, channels", [
    ({"random_translate": 3}, 1),
    ({"random_rotation": 15.0}, 1),
    ({"random_translate": 2, "random_rotation": 10.0, "random_flip": True}, 1),
    ({"random_translate": 2, "random_rotation": 10.0, "random_flip": True}, 3),
    ({"random_scale": 0.4}, 1),
    ({"random_scale": 0.4, "random_rotation": 10.0}, 3),
    ({"random_shear": 30.0}, 1),
])
def test_augmentation_is_seeded_and_leaves_eval_alone(fields, channels):
  transform = transforms.ImageTransform(16, channels=channels, **fields)
  image = np.random.default_rng(0).integers(0, 256, (16, 16, channels),
                                            np.uint8)
  first = transform.train(image, tf.constant([3, 4])).numpy()
  np.testing.assert_array_equal(
      first, transform.train(image, tf.constant([3, 4])).numpy())
  others = [transform.train(image, tf.constant([s, 4])).numpy()
            for s in range(5, 10)]
  assert any(not np.array_equal(first, other) for other in others)
  np.testing.assert_array_equal(transform.eval(image).numpy(), image)
  assert first.dtype == np.float32 and first.shape == (16, 16, channels)


def test_rotation_keeps_the_angle_within_bounds():
  # A bar along the row through the centre turns by at most 10 degrees: its
  # end pixels stay within tan(10 deg) * 7 rows of the centre row.
  image = np.zeros((15, 15, 1), np.uint8)
  image[7, :] = 255
  transform = transforms.ImageTransform(15, channels=1, random_rotation=10.0)
  limit = math.tan(math.radians(10.0)) * 7 + 1
  tilted = 0
  for seed in range(20):
    out = transform.train(image, tf.constant([seed, 2])).numpy()[..., 0]
    rows = np.argwhere(out > 127)[:, 0]
    assert np.abs(rows - 7).max() <= limit
    tilted += np.abs(rows - 7).max() >= 1
  assert tilted > 0


@pytest.mark.parametrize("fields, message", [
    ({"random_translate": -1}, "random_translate must be >= 0, got -1"),
    ({"random_rotation": 200.0}, "random_rotation must be in [0, 180]"),
    ({"random_rotation": -5.0}, "got -5.0"),
    ({"random_scale": 1.5}, "random_scale must be in [0, 1]"),
    ({"random_scale": -0.1}, "got -0.1"),
    ({"random_shear": 90.0}, "random_shear must be in .* got 90.0"),
    ({"channels": 2}, "channels must be 1 or 3, got 2"),
    ({"resize_size": 8}, "resize_size 8 is smaller than image_size 16"),
    ({"fill": "wrap"}, "fill must be one of"),
    ({"colour_augmentation": "jitter"}, "colour_augmentation must be one of"),
    ({"fill": "reflect", "random_translate": 17},
     "random_translate 17 is larger than image_size 16"),
])
def test_bad_fields_are_named(fields, message):
  with pytest.raises(ValueError, match=message.replace("[", r"\[")):
    transforms.ImageTransform(16, **fields)


def _grey(size=9, value=200):
  return np.full((size, size, 1), value, np.uint8)


@pytest.mark.parametrize("fields", [
    {"random_translate": 3}, {"random_rotation": 30.0},
    {"random_translate": 3, "random_rotation": 30.0},
    {"random_scale": 0.5}, {"random_shear": 30.0}])
def test_reflect_fill_leaves_no_black_border(fields):
  # On a uniform grey image zero filling shows as black pixels at the
  # edges; mirroring the image about its edge keeps it uniform.
  zeros = transforms.ImageTransform(9, channels=1, **fields)
  reflect = transforms.ImageTransform(9, channels=1, fill="reflect", **fields)
  seeds = [tf.constant([seed, 5]) for seed in range(10)]
  assert min(zeros.train(_grey(), s).numpy().min() for s in seeds) < 100
  for s in seeds:
    np.testing.assert_allclose(reflect.train(_grey(), s).numpy(), 200.0,
                               atol=1e-3)


def test_reflect_fill_mirrors_about_the_edge():
  # A shift by the whole pad: the uncovered columns are the image's first
  # columns in mirror order (d c b a | a b c d), seen in the shifts that
  # move the content right.
  image = np.tile(np.arange(0, 90, 10, dtype=np.uint8)[None, :, None],
                  (9, 1, 1))
  transform = transforms.ImageTransform(9, channels=1, random_translate=2,
                                        fill="reflect")
  rows = {tuple(transform.train(image, tf.constant([seed, 6])).numpy()[0, :, 0])
          for seed in range(60)}
  assert (10, 0, 0, 10, 20, 30, 40, 50, 60) in rows  # shifted right by 2
  assert (20, 30, 40, 50, 60, 70, 80, 80, 70) in rows  # shifted left by 2


def test_eval_ignores_the_fill():
  image = np.random.default_rng(1).integers(0, 256, (9, 9, 3), np.uint8)
  transform = transforms.ImageTransform(9, random_translate=2,
                                        random_rotation=10.0, fill="reflect")
  np.testing.assert_array_equal(transform.eval(image).numpy(), image)


def test_channel_inversion_inverts_each_channel_independently():
  image = np.random.default_rng(2).integers(0, 256, (6, 6, 3), np.uint8)
  transform = transforms.ImageTransform(
      6, colour_augmentation="channel_inversion")
  patterns = set()
  for seed in range(64):
    out = transform.train(image, tf.constant([seed, 3])).numpy()
    pattern = []
    for c in range(3):
      if np.array_equal(out[..., c], image[..., c]):
        pattern.append(0)
      else:
        np.testing.assert_allclose(out[..., c], 255.0 - image[..., c])
        pattern.append(1)
    patterns.add(tuple(pattern))
  assert len(patterns) == 8  # every channel pattern, at p = 1/2 each
  np.testing.assert_array_equal(transform.eval(image).numpy(), image)


def test_channel_inversion_comes_before_the_fill():
  # A black image inverted is white; shifted after that, its uncovered
  # border is the zero fill, black. (Inverted after the shift, it would be
  # white all over.)
  transform = transforms.ImageTransform(
      9, channels=1, random_translate=3,
      colour_augmentation="channel_inversion")
  outs = [transform.train(_grey(value=0), tf.constant([seed, 7])).numpy()
          for seed in range(20)]
  inverted = [out for out in outs if out.max() == 255.0]
  assert inverted and len(inverted) < len(outs)
  assert any(out.min() == 0.0 for out in inverted)
  assert all(set(np.unique(out)) <= {0.0, 255.0} for out in outs)


def test_channel_levels_comes_before_the_fill():
  # A black image takes its channel's low level everywhere; shifted after
  # that, its uncovered border is the zero fill, black. (Remapped after the
  # shift, it would be one level all over.)
  transform = transforms.ImageTransform(
      9, channels=1, random_translate=3, colour_augmentation="channel_levels")
  outs = [transform.train(_grey(value=0), tf.constant([seed, 7])).numpy()
          for seed in range(20)]
  levels = [np.unique(out) for out in outs]
  assert all(level.max() > 0.0 for level in levels)  # Recoloured, each.
  assert all(len(level) == 1 or (len(level) == 2 and level[0] == 0.0)
             for level in levels)
  assert any(len(level) == 2 for level in levels)  # A black border.


def test_channel_levels_maps_each_channel_onto_a_random_interval():
  # Black and white pixels become each channel's two levels; every other
  # intensity lies on the line between them.
  row = np.array([0, 255, 51, 204], np.uint8)
  image = np.tile(row[None, :, None], (4, 1, 3))
  image[..., 1] = 255 - image[..., 1]
  transform = transforms.ImageTransform(
      4, colour_augmentation="channel_levels")
  inverted, contrasts, levels = 0, [], []
  for seed in range(100):
    out = transform.train(image, tf.constant([seed, 3])).numpy()
    for c in range(3):
      low = out[0, list(image[0, :, c]).index(0), c]
      high = out[0, list(image[0, :, c]).index(255), c]
      np.testing.assert_allclose(
          out[..., c], low + (high - low) * image[..., c] / 255.0,
          rtol=1e-5, atol=1e-3)
      inverted += high < low
      contrasts.append(abs(high - low))
      levels += [low, high]
    assert len({tuple(out[0, 0]), tuple(out[0, 1])}) == 2
  assert 100 < inverted < 200  # 300 channels, p = 1/2
  assert min(contrasts) < 20 and max(contrasts) > 200
  assert 0.0 <= min(levels) < 10 and 245 < max(levels) <= 255.0
  np.testing.assert_array_equal(transform.eval(image).numpy(), image)


def test_channel_levels_is_seeded():
  image = np.random.default_rng(3).integers(0, 256, (5, 5, 3), np.uint8)
  transform = transforms.ImageTransform(
      5, colour_augmentation="channel_levels")
  first = transform.train(image, tf.constant([4, 1])).numpy()
  np.testing.assert_array_equal(
      first, transform.train(image, tf.constant([4, 1])).numpy())
  assert not np.array_equal(
      first, transform.train(image, tf.constant([5, 1])).numpy())
