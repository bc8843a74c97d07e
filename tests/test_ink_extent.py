"""Tests of benchmarks/ink_extent.py's pure function."""

import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import ink_extent  # noqa: E402  pylint: disable=wrong-import-position


def test_ink_extent_by_hand():
  images = np.zeros((3, 8, 8, 3), np.uint8)
  images[0, 2:7, 3, :] = 255  # a bar 5 high, 1 wide
  images[1, 1, 1, :] = 255  # two dots: the box spans them
  images[1, 4, 6, :] = 255
  images[2, 0, 0, 0] = 255  # one bright channel: mean 85, below 127.5
  heights, widths = ink_extent.ink_extent(images, 127.5)
  np.testing.assert_array_equal(heights, [5, 4, 0])
  np.testing.assert_array_equal(widths, [1, 6, 0])
