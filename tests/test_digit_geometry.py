"""Tests of benchmarks/digit_geometry.py's pure functions."""

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import digit_geometry  # noqa: E402  pylint: disable=wrong-import-position


def test_ink_extent_by_hand():
  images = np.zeros((3, 8, 8, 3), np.uint8)
  images[0, 2:7, 3, :] = 255  # a bar 5 high, 1 wide
  images[1, 1, 1, :] = 255  # two dots: the box spans them
  images[1, 4, 6, :] = 255
  images[2, 0, 0, 0] = 255  # one bright channel: mean 85, below 127.5
  heights, widths = digit_geometry.ink_extent(images, 127.5)
  np.testing.assert_array_equal(heights, [5, 4, 0])
  np.testing.assert_array_equal(widths, [1, 6, 0])


@pytest.mark.parametrize("lean, expected", [
    (0, 0.0),
    # A stroke moving one column right per row upwards: 45 degrees.
    (1, 45.0),
    (-1, -45.0),
])
def test_slant_of_a_straight_stroke(lean, expected):
  image = np.zeros((1, 11, 11, 1), np.float32)
  for row in range(1, 10):
    image[0, row, 5 + lean * (5 - row)] = 255.0
  np.testing.assert_allclose(digit_geometry.slant_degrees(image), [expected],
                             atol=1e-9)


def test_slant_of_an_empty_image_is_zero():
  np.testing.assert_array_equal(
      digit_geometry.slant_degrees(np.zeros((2, 5, 5, 3))), [0.0, 0.0])
