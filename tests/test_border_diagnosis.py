"""Tests of benchmarks/border_diagnosis.py's pure functions."""

import math
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import border_diagnosis  # noqa: E402  pylint: disable=wrong-import-position


def _row(values):
  return np.asarray(values, np.float32)[None, None, :, None]  # [1, 1, W, 1]


@pytest.mark.parametrize("dx, fill, expected", [
    (0, "zeros", [1, 2, 3, 4]),
    (2, "zeros", [0, 0, 1, 2]),
    (-1, "zeros", [2, 3, 4, 0]),
    # Mirrored about the edge, the edge pixel repeated: d c b a | a b c d.
    (2, "reflect", [2, 1, 1, 2]),
    (-1, "reflect", [2, 3, 4, 4]),
    (4, "reflect", [4, 3, 2, 1]),
])
def test_shifted_by_hand(dx, fill, expected):
  got = border_diagnosis.shifted(_row([1, 2, 3, 4]), 0, dx, fill)
  np.testing.assert_array_equal(got[0, 0, :, 0], expected)


def test_shifted_moves_rows_down():
  images = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
  got = border_diagnosis.shifted(images, 1, 0, "zeros")[0, :, :, 0]
  np.testing.assert_array_equal(got, [[0, 0, 0], [0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize("dy, dx, fill, message", [
    (0, 5, "zeros", "larger than the images"),
    (0, 1, "wrap", "fill must be one of"),
])
def test_shifted_refuses(dy, dx, fill, message):
  with pytest.raises(ValueError, match=message):
    border_diagnosis.shifted(_row([1, 2, 3, 4]), dy, dx, fill)


def test_view_scores_by_hand():
  probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
  got = border_diagnosis.view_scores(probs, reference_predictions=[0, 0, 0, 0])
  # Entropies 0, log 2, 0, 0; predictions 0, 0 (first on ties), 1, 0.
  assert got["entropy"] == pytest.approx(math.log(2) / 4)
  assert got["largest_class_share"] == pytest.approx(0.75)
  assert got["changed"] == pytest.approx(0.25)
