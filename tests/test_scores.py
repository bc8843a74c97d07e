"""Tests of srdc_tf.scores against hand computations on tiny arrays."""

import math

import numpy as np
import pytest

from srdc_tf import scores

LOG2, LOG3 = math.log(2.0), math.log(3.0)


def _h(*p):
  """Entropy in nats of one distribution, by hand."""
  return -sum(x * math.log(x) for x in p if x > 0)


# === mean_entropy ===


@pytest.mark.parametrize("probs, expected", [
    ([[1.0, 0.0], [0.0, 1.0]], 0.0),  # One-hot: no uncertainty.
    ([[0.5, 0.5], [0.5, 0.5]], LOG2),  # Uniform: log K.
    ([[1 / 3] * 3], LOG3),
    # (H(0.5, 0.5) + H(1, 0)) / 2 = log(2) / 2.
    ([[0.5, 0.5], [1.0, 0.0]], LOG2 / 2),
    # H(0.25, 0.75) = -(0.25 log 0.25 + 0.75 log 0.75) = 0.5623351446.
    ([[0.25, 0.75]], 0.5623351446188083),
])
def test_mean_entropy_by_hand(probs, expected):
  assert scores.mean_entropy(probs) == pytest.approx(expected, abs=1e-12)


# === class_balance ===


@pytest.mark.parametrize("probs, expected", [
    # Every sample to class 0: the mean prediction is one-hot.
    ([[1.0, 0.0, 0.0]] * 4, 0.0),
    # Confident but spread evenly: mean (1/3, 1/3, 1/3), balance 1.
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], 1.0),
    # Uniform predictions are balanced too (balance is not confidence).
    ([[1 / 3] * 3] * 2, 1.0),
    # Mean (3/4, 1/4): H = 0.5623351446 nats over log 2.
    ([[1.0, 0.0], [0.5, 0.5]], 0.5623351446188083 / LOG2),
    # Mean (1/2, 1/2, 0) over K = 3: log 2 / log 3.
    ([[1, 0, 0], [0, 1, 0]], LOG2 / LOG3),
])
def test_class_balance_by_hand(probs, expected):
  assert scores.class_balance(probs) == pytest.approx(expected, abs=1e-12)


# === soft_neighbourhood_density ===


def _snd_by_hand(x, temperature):
  """SND with loops: normalise, cosine similarities without the diagonal,
  softmax of each row over similarity / T, mean entropy of the rows."""
  x = [np.asarray(row, np.float64) / np.linalg.norm(row) for row in x]
  total = 0.0
  for i, xi in enumerate(x):
    z = [float(xi @ xj) / temperature for j, xj in enumerate(x) if j != i]
    e = [math.exp(v) for v in z]
    total += _h(*[v / sum(e) for v in e])
  return total / len(x)


def test_snd_of_identical_rows_is_log_of_the_neighbours():
  # All similarities equal: each row's softmax is uniform over N - 1 = 4.
  probs = np.tile([0.7, 0.2, 0.1], (5, 1))
  assert scores.soft_neighbourhood_density(probs) == pytest.approx(
      math.log(4), abs=1e-5)


def test_snd_of_three_samples_by_hand():
  # Rows 0 and 1 are the same direction, row 2 is orthogonal to both, T = 1:
  # row 0's neighbours have similarities (1, 0): softmax (e, 1) / (e + 1);
  # row 1 alike; row 2's are (0, 0): uniform, entropy log 2.
  probs = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
  p = math.e / (math.e + 1)
  expected = (2 * _h(p, 1 - p) + LOG2) / 3
  assert scores.soft_neighbourhood_density(
      probs, temperature=1.0) == pytest.approx(expected, abs=1e-6)
  assert expected == pytest.approx(_snd_by_hand(probs, 1.0))


@pytest.mark.parametrize("temperature, chunk_rows", [
    (0.05, 1), (0.05, 3), (0.05, 1000), (0.5, 4), (2.0, 7)])
def test_snd_matches_loops_whatever_the_chunks(temperature, chunk_rows):
  rng = np.random.default_rng(0)
  probs = scores.softmax(rng.normal(size=(11, 4)) * 2)
  assert scores.soft_neighbourhood_density(
      probs, temperature=temperature, chunk_rows=chunk_rows) == (
          pytest.approx(_snd_by_hand(probs, temperature), rel=1e-5))


def test_snd_is_higher_for_tight_clusters_than_for_a_spread():
  rng = np.random.default_rng(1)
  # Two tight clusters of 10 confident predictions each ...
  tight = scores.softmax(np.repeat(np.eye(2) * 8, 10, axis=0)
                         + rng.normal(scale=0.05, size=(20, 2)))
  # ... against 20 predictions spread along the whole simplex.
  spread = np.stack([np.linspace(0.0, 1.0, 20), np.linspace(1.0, 0.0, 20)], 1)
  assert (scores.soft_neighbourhood_density(tight)
          > scores.soft_neighbourhood_density(spread))


def test_snd_subsamples_a_fixed_subset_above_max_samples():
  rng = np.random.default_rng(2)
  probs = scores.softmax(rng.normal(size=(50, 3)))
  subset = scores.snd_subset(50, max_samples=20, seed=0)
  assert len(subset) == 20 and np.all(np.diff(subset) > 0)
  np.testing.assert_array_equal(subset, scores.snd_subset(50, 20, seed=0))
  assert scores.snd_subset(20, max_samples=20) is None
  assert scores.soft_neighbourhood_density(probs, max_samples=20) == (
      pytest.approx(_snd_by_hand(probs[subset], 0.05), rel=1e-5))
  assert scores.soft_neighbourhood_density(probs, max_samples=None) == (
      pytest.approx(_snd_by_hand(probs, 0.05), rel=1e-5))


# === agreement, shares ===


@pytest.mark.parametrize("a, b, expected", [
    ([0, 1, 2, 3], [0, 1, 2, 3], 1.0),
    ([0, 1, 2, 3], [1, 2, 3, 0], 0.0),
    ([0, 0, 1, 1], [0, 1, 1, 1], 0.75),
    ([5], [5], 1.0),
])
def test_agreement_by_hand(a, b, expected):
  assert scores.agreement(np.array(a), np.array(b)) == expected


@pytest.mark.parametrize("predictions, num_classes, expected", [
    ([0, 1, 2], 3, 1 / 3),  # Balanced: 1/K.
    ([2, 2, 2, 2], 3, 1.0),  # One-hot collapse.
    ([0, 0, 0, 1], 2, 0.75),
    ([1, 1, 0, 3, 3, 3], 4, 0.5),
])
def test_largest_class_share_by_hand(predictions, num_classes, expected):
  assert scores.largest_class_share(predictions, num_classes) == (
      pytest.approx(expected))


def test_class_shares_count_classes_never_seen():
  np.testing.assert_allclose(scores.class_shares([0, 0, 2, 2], 4),
                             [0.5, 0.0, 0.5, 0.0])


# === target_scores ===


def test_target_scores_of_uniform_and_collapsed_logits():
  uniform = scores.target_scores(np.zeros((4, 3)))
  assert uniform[scores.ENTROPY] == pytest.approx(LOG3)
  assert uniform[scores.BALANCE] == pytest.approx(1.0)
  assert uniform[scores.SND] == pytest.approx(math.log(3), abs=1e-5)
  # argmax of equal logits is class 0 for every sample.
  assert uniform[scores.LARGEST_CLASS_SHARE] == 1.0
  assert scores.KMEANS_AGREEMENT not in uniform
  collapsed = scores.target_scores(
      np.tile([50.0, 0.0, 0.0], (6, 1)),
      pseudo_labels=np.array([0, 0, 1, 1, 2, 2]),
      baseline_predictions=np.array([0, 1, 0, 1, 0, 0]))
  assert collapsed[scores.ENTROPY] == pytest.approx(0.0, abs=1e-12)
  assert collapsed[scores.BALANCE] == pytest.approx(0.0, abs=1e-12)
  assert collapsed[scores.LARGEST_CLASS_SHARE] == 1.0
  assert collapsed[scores.KMEANS_AGREEMENT] == pytest.approx(2 / 6)
  assert collapsed[scores.BASELINE_AGREEMENT] == pytest.approx(4 / 6)


def test_softmax_of_large_logits_is_finite():
  probs = scores.softmax([[1000.0, 0.0], [0.0, 0.0]])
  np.testing.assert_allclose(probs, [[1.0, 0.0], [0.5, 0.5]])


# === Input errors ===


@pytest.mark.parametrize("function, args, message", [
    (scores.mean_entropy, ([0.5, 0.5],), r"2-D \[samples, classes\], got "
     r"shape \(2,\)"),
    (scores.mean_entropy, ([[0.5, 0.6]],), "sum to 1, got a row summing to "
     "1.1"),
    (scores.mean_entropy, ([[-0.5, 1.5]],), "must be >= 0, got a minimum of "
     "-0.5"),
    (scores.mean_entropy, ([[np.nan, 1.0]],), "1 NaN or infinite"),
    (scores.mean_entropy, (np.zeros((0, 3)),), r"got shape \(0, 3\)"),
    (scores.class_balance, ([[1.0]],), "K >= 2 classes, got 1"),
    (scores.soft_neighbourhood_density, ([[1.0, 0.0]],),
     "at least 2 samples, got 1"),
    (scores.soft_neighbourhood_density, ([[1.0, 0.0], [0.0, 0.0]],),
     r"row of zeros \(row 1\)"),
    (scores.soft_neighbourhood_density, ([[1.0], [1.0]], 0.0),
     "temperature must be > 0, got 0.0"),
    (scores.agreement, ([0, 1], [0]), "a has 2 labels but b has 1"),
    (scores.agreement, ([0.0], [0]), "integers, got dtype float64"),
    (scores.agreement, ([], []), "empty"),
    (scores.largest_class_share, ([0, 3], 3), r"in \[0, 3\), got \[3\]"),
    (scores.largest_class_share, ([0], 0), "num_classes must be > 0, got 0"),
    (scores.softmax, ([[np.inf, 0.0]],), "logits must be finite"),
])
def test_bad_inputs_quote_the_value(function, args, message):
  with pytest.raises(ValueError, match=message):
    function(*args)
