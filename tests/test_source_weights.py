"""Tests of srdc_tf.clustering.source_weights (soft source selection)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.clustering.source_weights import source_weights


def test_hand_computed():
  features = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0], [3.0, 3.0]]
  labels = [0, 0, 0, 1, 0]
  centroids = [[2.0, 0.0], [5.0, 5.0]]
  # cos with own class centre: 1, 0, -1, 1, cos(45 deg) = 1/sqrt(2).
  # w = (1 + cos) / 2: 1, 0.5, 0, 1, (1 + 0.7071068) / 2 = 0.8535534.
  got = source_weights(features, labels, centroids)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(
      got.numpy(), [1.0, 0.5, 0.0, 1.0, (1.0 + 1.0 / math.sqrt(2.0)) / 2.0],
      rtol=1e-6, atol=1e-7)


def test_single_sample_and_scale_invariance():
  # [1, 2] vs [2, 1]: cos = 4 / (sqrt5 sqrt5) = 0.8 -> w = 0.9.
  for scale in (1.0, 0.001, 250.0):
    got = source_weights([[scale, 2.0 * scale]], [1],
                         [[-7.0, 0.0], [2.0 / scale, 1.0 / scale]])
    np.testing.assert_allclose(got.numpy(), [0.9], rtol=1e-6)


def test_identical_points_get_weight_one():
  point = [0.3, -1.2, 4.0]
  got = source_weights([point] * 3, [1, 1, 1], [[1.0, 1.0, 1.0], point])
  np.testing.assert_allclose(got.numpy(), [1.0, 1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("n, k, d", [(1, 2, 3), (9, 3, 4), (25, 5, 8)])
def test_matches_reference(n, k, d):
  rng = np.random.default_rng(n + k + d)
  features = rng.normal(size=(n, d)).astype(np.float32)
  labels = rng.integers(0, k, size=n)
  centroids = rng.normal(size=(k, d)).astype(np.float32)
  expected = []
  for j in range(n):
    a = features[j].astype(np.float64)
    b = centroids[labels[j]].astype(np.float64)
    expected.append((1.0 + a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                    / 2.0)
  got = source_weights(features, np.asarray(labels, np.int64), centroids)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
  assert np.all(got.numpy() >= 0.0) and np.all(got.numpy() <= 1.0)
