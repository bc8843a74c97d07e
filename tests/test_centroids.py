"""Tests of srdc_tf.clustering.centroids (per-class means)."""

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.clustering.centroids import class_centroids

FEATURES = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 9.0]]
LABELS = [0, 0, 2, 2]


def test_hand_computed_with_empty_class_zero_default():
  # Class 0: ([1,2] + [3,4]) / 2 = [2, 3]; class 1: empty -> zeros;
  # class 2: ([5,6] + [7,9]) / 2 = [6, 7.5].
  centroids, counts = class_centroids(FEATURES, LABELS, 3)
  assert centroids.dtype == tf.float32 and counts.dtype == tf.int32
  np.testing.assert_allclose(centroids.numpy(),
                             [[2.0, 3.0], [0.0, 0.0], [6.0, 7.5]], rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), [2, 0, 2])


def test_empty_class_uses_fallback_row_only():
  fallback = [[90.0, 91.0], [-1.0, -2.0], [80.0, 81.0]]
  centroids, counts = class_centroids(FEATURES, np.array(LABELS, np.int64),
                                      3, fallback=fallback)
  # Only the empty class 1 takes its fallback row.
  np.testing.assert_allclose(centroids.numpy(),
                             [[2.0, 3.0], [-1.0, -2.0], [6.0, 7.5]], rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), [2, 0, 2])


def test_trailing_empty_classes_and_fallback_float64():
  # K = 4, classes 2 and 3 empty; all four samples in class 0 or 1.
  # Class 0: [1,2]; class 1: ([3,4] + [5,6] + [7,9]) / 3 = [5, 19/3].
  fallback = np.arange(8, dtype=np.float64).reshape(4, 2)
  centroids, counts = class_centroids(FEATURES, [0, 1, 1, 1], 4,
                                      fallback=fallback)
  np.testing.assert_allclose(
      centroids.numpy(),
      [[1.0, 2.0], [5.0, 19.0 / 3.0], [4.0, 5.0], [6.0, 7.0]], rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), [1, 3, 0, 0])


def test_single_sample():
  centroids, counts = class_centroids([[4.0, -1.0, 0.5]], [1], 2)
  np.testing.assert_allclose(centroids.numpy(),
                             [[0.0, 0.0, 0.0], [4.0, -1.0, 0.5]], rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), [0, 1])


def test_identical_points():
  centroids, counts = class_centroids([[2.5, 3.5]] * 3, [0, 0, 0], 2,
                                      fallback=[[9.0, 9.0], [7.0, 7.0]])
  np.testing.assert_allclose(centroids.numpy(), [[2.5, 3.5], [7.0, 7.0]],
                             rtol=1e-6)
  np.testing.assert_array_equal(counts.numpy(), [3, 0])


@pytest.mark.parametrize("n, k, d", [(5, 2, 3), (30, 4, 6), (7, 9, 2)])
def test_matches_numpy_reference(n, k, d):
  rng = np.random.default_rng(n + 10 * k + 100 * d)
  features = rng.normal(size=(n, d)).astype(np.float32)
  labels = rng.integers(0, k, size=n)
  fallback = rng.normal(size=(k, d)).astype(np.float32)
  expected = np.empty((k, d))
  for c in range(k):
    members = features[labels == c]
    expected[c] = members.mean(axis=0) if len(members) else fallback[c]
  centroids, counts = class_centroids(features, labels, k, fallback=fallback)
  np.testing.assert_allclose(centroids.numpy(), expected, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(counts.numpy(),
                                np.bincount(labels, minlength=k))
