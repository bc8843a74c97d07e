"""Tests of srdc_tf.clustering.distances (chunked, no [N, K, D] tensor)."""

import re

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.clustering.distances import l2_normalize
from srdc_tf.clustering.distances import nearest_centre
from srdc_tf.clustering.distances import squared_distances


def _naive_squared(features, centres):
  """Independent reference: explicit [N, K, D] differences, float64."""
  diff = (np.asarray(features, np.float64)[:, None, :]
          - np.asarray(centres, np.float64)[None, :, :])
  return np.sum(diff * diff, axis=2)


def _naive_nearest(features, centres, spherical=False):
  features = np.asarray(features, np.float64)
  centres = np.asarray(centres, np.float64)
  if spherical:
    features = features / np.linalg.norm(features, axis=1, keepdims=True)
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    return np.argmax(np.einsum("nd,kd->nk", features, centres), axis=1)
  return np.argmin(_naive_squared(features, centres), axis=1)


def test_squared_distances_hand_computed():
  features = [[0.0, 0.0], [1.0, 2.0]]
  centres = [[3.0, 4.0], [1.0, 2.0], [0.0, 0.0]]
  # Row 0: 9+16 = 25, 1+4 = 5, 0.
  # Row 1: (-2)^2+(-2)^2 = 8, 0, 1+4 = 5.
  got = squared_distances(features, centres)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), [[25.0, 5.0, 0.0], [8.0, 0.0, 5.0]],
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n, k, d", [(1, 2, 1), (6, 2, 3), (13, 5, 8)])
def test_squared_distances_matches_naive(n, k, d):
  rng = np.random.default_rng(n * k * d)
  features = rng.normal(size=(n, d)).astype(np.float32)
  centres = rng.normal(size=(k, d)).astype(np.float32)
  got = squared_distances(features, centres).numpy()
  np.testing.assert_allclose(got, _naive_squared(features, centres),
                             rtol=1e-5, atol=1e-5)


def test_squared_distances_identical_points_clipped_at_zero():
  # ||a||^2 + ||a||^2 - 2 a.a may round below 0; it must be clipped.
  rng = np.random.default_rng(7)
  points = rng.normal(size=(20, 16)).astype(np.float32) * 3.0
  got = squared_distances(points, points).numpy()
  assert np.all(got >= 0.0)
  np.testing.assert_allclose(np.diag(got), np.zeros(20), atol=1e-4)


def test_l2_normalize():
  # [3, 4] / 5 = [0.6, 0.8]; the zero row stays zero (epsilon guard).
  got = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], np.float64))
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), [[0.6, 0.8], [0.0, 0.0]],
                             rtol=1e-6)


def test_nearest_centre_hand_computed():
  features = [[0.0, 0.0], [1.0, 2.0], [3.0, 3.9], [10.0, 10.0]]
  centres = [[0.0, 0.0], [3.0, 4.0]]
  # [1, 2]: 1+4 = 5 to c0 vs 4+4 = 8 to c1 -> 0.
  # [3, 3.9]: 9+15.21 = 24.21 vs 0+0.01 -> 1.   [10, 10] -> 1.
  got = nearest_centre(features, centres)
  assert got.dtype == tf.int32
  np.testing.assert_array_equal(got.numpy(), [0, 0, 1, 1])


def test_nearest_centre_spherical_differs_from_euclidean():
  features = [[2.0, 1.5]]
  centres = [[10.0, 0.0], [0.0, 1.0]]
  # Euclidean: 64 + 2.25 = 66.25 to c0, 4 + 0.25 = 4.25 to c1 -> 1.
  # Cosine: [2, 1.5]/2.5 = [0.8, 0.6]; 0.8 with c0, 0.6 with c1 -> 0.
  np.testing.assert_array_equal(nearest_centre(features, centres).numpy(),
                                [1])
  np.testing.assert_array_equal(
      nearest_centre(features, centres, spherical=True).numpy(), [0])


@pytest.mark.parametrize("spherical", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 3, 10, 11, 50, None])
def test_nearest_centre_chunks_agree_with_naive(chunk_size, spherical):
  rng = np.random.default_rng(11)
  features = rng.normal(size=(10, 4)).astype(np.float32)
  centres = rng.normal(size=(3, 4)).astype(np.float32)
  kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
  got = nearest_centre(features, centres, spherical=spherical, **kwargs)
  expected = _naive_nearest(features, centres, spherical)
  assert len(set(expected.tolist())) == 3  # a non-trivial assignment
  np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_nearest_centre_single_sample_and_identical_points(chunk_size):
  # Single sample [3, 4]: 25 to [0, 0] vs 49 + 36 = 85 to [10, 10] -> 0.
  np.testing.assert_array_equal(
      nearest_centre([[3.0, 4.0]], [[0.0, 0.0], [10.0, 10.0]],
                     chunk_size=chunk_size).numpy(), [0])
  # Five copies of [2, 3]: 4 + 9 = 13 to [0, 0] vs 4 + 1 = 5 to [4, 4] -> 1.
  np.testing.assert_array_equal(
      nearest_centre([[2.0, 3.0]] * 5, [[0.0, 0.0], [4.0, 4.0]],
                     chunk_size=chunk_size).numpy(), [1] * 5)


def test_nearest_centre_empty_input():
  got = nearest_centre(np.zeros((0, 3), np.float32), [[1.0, 2.0, 3.0]])
  assert got.dtype == tf.int32
  assert got.shape == (0,)


@pytest.mark.parametrize("chunk_size", [0, -1, -8192])
def test_nearest_centre_rejects_bad_chunk_size(chunk_size):
  with pytest.raises(ValueError,
                     match=re.escape(f"chunk_size must be > 0, got "
                                     f"{chunk_size!r}")):
    nearest_centre([[0.0]], [[1.0]], chunk_size=chunk_size)
