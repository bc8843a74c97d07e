"""Tests of the neighbour vote behind `--refinement_epochs`."""

import re

import numpy as np
import pytest

from srdc_tf.clustering import neighbours


def _brute_force_neighbours(features, k):
  unit = features / np.linalg.norm(features, axis=1, keepdims=True)
  similarity = unit @ unit.T
  np.fill_diagonal(similarity, -np.inf)
  return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("chunk_size", [1, 3, 2048])
@pytest.mark.parametrize("k", [1, 3])
def test_nearest_neighbours_match_brute_force(chunk_size, k):
  features = np.random.default_rng(0).normal(size=(11, 5)).astype("float32")
  np.testing.assert_array_equal(
      neighbours.nearest_neighbours(features, k, chunk_size=chunk_size),
      _brute_force_neighbours(features, k))


def test_nearest_neighbours_hand_computed():
  # Directions 0, 10 and 90 degrees, and 180: cosine, not distance, decides
  # (the second point is ten times longer than the first).
  features = [[1.0, 0.0], [10.0, 1.7632698], [0.0, 1.0], [-1.0, 0.0]]
  np.testing.assert_array_equal(neighbours.nearest_neighbours(features, 2),
                                [[1, 2], [0, 2], [1, 0], [2, 1]])


def test_a_sample_is_never_its_own_neighbour():
  # Two copies of one point: each other's nearest, never themselves.
  features = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
  np.testing.assert_array_equal(
      neighbours.nearest_neighbours(features, 1), [[1], [0], [0]])


@pytest.mark.parametrize("k", [0, 3])
def test_nearest_neighbours_rejects_k_outside_the_samples(k):
  with pytest.raises(ValueError, match=re.escape(f"k must be in [1, 2] for 3 "
                                                 f"samples, got {k!r}")):
    neighbours.nearest_neighbours(np.eye(3), k)


def test_neighbour_vote_hand_computed():
  probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
  # Sample 0 with 1 and 2: [1.4, 1.6] -> 1; sample 1 with 0: [1.1, 0.9] -> 0;
  # sample 2 with 1 and 3: [1.1, 1.9] -> 1; sample 3 with 0: [1.5, 0.5] -> 0.
  np.testing.assert_array_equal(
      neighbours.neighbour_vote(probabilities, [[1, 2], [0, 0], [1, 3],
                                                [0, 0]]),
      [1, 0, 1, 0])
  np.testing.assert_array_equal(
      neighbours.neighbour_vote(probabilities, [[1], [0], [1], [0]]),
      [0, 0, 1, 0])


def test_neighbour_vote_rejects_mismatched_rows():
  with pytest.raises(ValueError, match="probabilities have 2 rows and "
                     "neighbours 3"):
    neighbours.neighbour_vote(np.ones((2, 2)), np.zeros((3, 1), np.int32))


def test_voted_labels_mend_an_isolated_error():
  # Two tight groups; the classifier calls one point of group 0 class 1.
  rng = np.random.default_rng(1)
  centres = np.array([[5.0, 0.0], [0.0, 5.0]])
  features = np.concatenate([centres[0] + 0.1 * rng.normal(size=(6, 2)),
                             centres[1] + 0.1 * rng.normal(size=(6, 2))])
  predictions = np.array([0] * 6 + [1] * 6)
  predictions[2] = 1
  logits = 4.0 * np.eye(2)[predictions]
  voted = neighbours.voted_labels(features, logits, 3)
  np.testing.assert_array_equal(voted, [0] * 6 + [1] * 6)
  assert neighbours.changed_fraction(voted, predictions) == pytest.approx(
      1 / 12)
