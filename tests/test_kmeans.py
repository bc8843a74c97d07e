"""Tests of srdc_tf.clustering.kmeans (Lloyd's k-means, fixed init)."""

import re

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.clustering.kmeans import kmeans


def _unit(x):
  return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference_kmeans(features, centres, iterations, spherical=False):
  """Independent float64 Lloyd's k-means with an explicit [N, K, D] tensor."""
  features = np.asarray(features, np.float64)
  centres = np.asarray(centres, np.float64).copy()
  if spherical:
    features, centres = _unit(features), _unit(centres)

  def assign(c):
    if spherical:
      return np.argmax(np.einsum("nd,kd->nk", features, c), axis=1)
    diff = features[:, None, :] - c[None, :, :]
    return np.argmin(np.sum(diff * diff, axis=2), axis=1)

  for _ in range(iterations):
    labels = assign(centres)
    for k in range(len(centres)):
      if np.any(labels == k):  # an empty cluster keeps its centre
        centres[k] = features[labels == k].mean(axis=0)
    if spherical:
      centres = _unit(centres)
  return assign(centres), centres


def _run(*args, **kwargs):
  assignments, centres = kmeans(*args, **kwargs)
  assert assignments.dtype == tf.int32 and centres.dtype == tf.float32
  return assignments.numpy(), centres.numpy()


# 1-D points 0, 1, 9, 10 from centres 0 and 1.
POINTS = [[0.0], [1.0], [9.0], [10.0]]
INIT = [[0.0], [1.0]]


@pytest.mark.parametrize(
    "iterations, labels, centres",
    [
        # No iteration: initial centres, assignment to them: 0->0, 1,9,10->1.
        (0, [0, 1, 1, 1], [[0.0], [1.0]]),
        # Round 1 assigns [0,1,1,1] -> centres 0 and (1+9+10)/3 = 20/3;
        # final assignment against them: 1 is 1 from 0, 17/3 from 20/3 -> 0.
        (1, [0, 0, 1, 1], [[0.0], [20.0 / 3.0]]),
        # Round 2 assigns [0,0,1,1] -> centres 0.5 and 9.5; then stable.
        (2, [0, 0, 1, 1], [[0.5], [9.5]]),
        (5, [0, 0, 1, 1], [[0.5], [9.5]]),
    ])
def test_hand_computed_rounds(iterations, labels, centres):
  got_labels, got_centres = _run(POINTS, INIT, iterations)
  np.testing.assert_array_equal(got_labels, labels)
  np.testing.assert_allclose(got_centres, centres, rtol=1e-6)


def test_empty_cluster_keeps_previous_centre():
  # Centre 50 attracts nothing: 0, 1 -> centre 0; 9, 11 -> centre 10.
  # New centres 0.5, 50 (kept), 10; stable afterwards.
  labels, centres = _run([[0.0], [1.0], [9.0], [11.0]],
                         [[0.0], [50.0], [10.0]], 3)
  np.testing.assert_array_equal(labels, [0, 0, 2, 2])
  np.testing.assert_allclose(centres, [[0.5], [50.0], [10.0]], rtol=1e-6)


def test_identical_points():
  # Four copies of [2, 3]: 13 to [0, 0] vs 4 + 1 = 5 to [4, 4] -> all 1;
  # centre 1 moves onto the point, centre 0 (empty) stays at the origin.
  labels, centres = _run([[2.0, 3.0]] * 4, [[0.0, 0.0], [4.0, 4.0]], 5)
  np.testing.assert_array_equal(labels, [1, 1, 1, 1])
  np.testing.assert_allclose(centres, [[0.0, 0.0], [2.0, 3.0]], rtol=1e-6)


def test_single_sample():
  # [3, 4]: 25 to [0, 0] vs 49 + 36 = 85 to [10, 10] -> 0; it becomes centre 0.
  labels, centres = _run([[3.0, 4.0]], [[0.0, 0.0], [10.0, 10.0]], 5)
  np.testing.assert_array_equal(labels, [0])
  np.testing.assert_allclose(centres, [[3.0, 4.0], [10.0, 10.0]], rtol=1e-6)


def test_zero_iterations_returns_initial_centres():
  init = np.array([[0.5, -1.0], [2.0, 2.0], [-3.0, 0.25]], np.float32)
  features = [[0.4, -0.9], [2.1, 1.8], [-2.0, 0.0], [1.9, 2.2]]
  labels, centres = _run(features, init, 0)
  np.testing.assert_array_equal(centres, init)
  np.testing.assert_array_equal(labels, [0, 1, 2, 1])


def test_spherical_hand_computed():
  # Directions: [2, 0] -> 0 deg, [3, 0.3] -> 5.7 deg, [0, 1] -> 90 deg,
  # [0.1, 4] -> 88.6 deg; initial [1, 0.2] (11.3 deg), [0.1, 1] (84.3 deg).
  # Clusters {0, 1}, {2, 3}; centre 0 = unit(mean([1, 0], [3, 0.3]/3.01496))
  # = unit([0.9975186, 0.0497519]) = [0.9987576, 0.0498137];
  # centre 1 = unit(mean([0, 1], [0.1, 4]/4.0012498))
  # = unit([0.0124961, 0.9998438]) = [0.0124970, 0.9999219].
  features = [[2.0, 0.0], [3.0, 0.3], [0.0, 1.0], [0.1, 4.0]]
  labels, centres = _run(features, [[1.0, 0.2], [0.1, 1.0]], 2,
                         spherical=True)
  np.testing.assert_array_equal(labels, [0, 0, 1, 1])
  np.testing.assert_allclose(
      centres, [[0.9987576, 0.0498137], [0.0124970, 0.9999219]], rtol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(centres, axis=1), [1.0, 1.0],
                             rtol=1e-6)


def test_spherical_uses_cosine_not_euclidean():
  # [2, 1.5]: Euclidean picks [0, 1] (4.25 vs 66.25), cosine picks [10, 0]
  # (0.8 vs 0.6). With 0 iterations only the assignment rule matters.
  features = [[2.0, 1.5]]
  init = [[10.0, 0.0], [0.0, 1.0]]
  labels, centres = _run(features, init, 0)
  np.testing.assert_array_equal(labels, [1])
  labels, centres = _run(features, init, 0, spherical=True)
  np.testing.assert_array_equal(labels, [0])
  # Zero iterations still return unit-norm centres when spherical.
  np.testing.assert_allclose(centres, [[1.0, 0.0], [0.0, 1.0]], rtol=1e-6)


def test_spherical_is_invariant_to_row_scales():
  rng = np.random.default_rng(21)
  features = rng.normal(size=(30, 5)).astype(np.float32)
  init = features[:4] * 7.0
  scales = rng.uniform(0.1, 10.0, size=(30, 1)).astype(np.float32)
  labels_a, centres_a = _run(features, init, 4, spherical=True)
  labels_b, centres_b = _run(features * scales, init * 0.01, 4,
                             spherical=True)
  np.testing.assert_array_equal(labels_a, labels_b)
  np.testing.assert_allclose(centres_a, centres_b, rtol=1e-4, atol=1e-5)


def _blobs(seed, n_per, k, d):
  rng = np.random.default_rng(seed)
  means = rng.normal(scale=4.0, size=(k, d))
  features = np.concatenate(
      [m + rng.normal(size=(n_per, d)) for m in means]).astype(np.float32)
  init = features[rng.choice(len(features), size=k, replace=False)]
  return features, init


@pytest.mark.parametrize("spherical", [False, True])
@pytest.mark.parametrize("iterations", [0, 1, 5])
@pytest.mark.parametrize("k", [2, 4])
def test_matches_reference(k, iterations, spherical):
  features, init = _blobs(100 + k, 12, k, 3)
  labels, centres = _run(features, init, iterations, spherical=spherical)
  ref_labels, ref_centres = _reference_kmeans(features, init, iterations,
                                              spherical)
  np.testing.assert_array_equal(labels, ref_labels)
  np.testing.assert_allclose(centres, ref_centres, rtol=1e-5, atol=1e-5)
  if spherical:
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), np.ones(k),
                               rtol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 3, 48, 1000])
def test_chunk_size_does_not_change_result(chunk_size):
  features, init = _blobs(7, 12, 4, 3)  # N = 48
  labels, centres = _run(features, init, 5, chunk_size=chunk_size)
  ref_labels, ref_centres = _reference_kmeans(features, init, 5)
  np.testing.assert_array_equal(labels, ref_labels)
  np.testing.assert_allclose(centres, ref_centres, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("iterations", [-1, -5])
def test_rejects_negative_iterations(iterations):
  with pytest.raises(ValueError,
                     match=re.escape(f"iterations must be >= 0, got "
                                     f"{iterations!r}")):
    kmeans([[0.0]], [[1.0]], iterations)


def test_rejects_bad_chunk_size():
  with pytest.raises(ValueError, match=re.escape("got 0")):
    kmeans([[0.0], [1.0]], [[1.0]], 1, chunk_size=0)


def test_empty_cluster_becomes_zero_like_the_released_code():
  # As in test_empty_cluster_keeps_previous_centre, but centre 50 becomes
  # 0 (sums / (0 + eps)) after round 1: centres 0.5, 0, 10. Round 2: 0 ->
  # the zero centre (0 vs 0.25), 1 -> 0.5: centres 1, 0, 10, stable. The
  # zero centre takes a sample from its neighbour.
  labels, centres = _run([[0.0], [1.0], [9.0], [11.0]],
                         [[0.0], [50.0], [10.0]], 3, empty_clusters="zero")
  np.testing.assert_array_equal(labels, [1, 0, 2, 2])
  np.testing.assert_allclose(centres, [[1.0], [0.0], [10.0]], rtol=1e-6)


def test_rejects_unknown_empty_clusters():
  with pytest.raises(ValueError, match=re.escape("'drop'")):
    kmeans([[0.0]], [[0.0]], 1, empty_clusters="drop")
