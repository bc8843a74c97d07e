"""Tests of srdc_tf.objectives.losses (per-sample SRDC losses)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.objectives.losses import clustering_loss
from srdc_tf.objectives.losses import confidence_mask
from srdc_tf.objectives.losses import diversity_loss
from srdc_tf.objectives.losses import weighted_source_loss

LN2 = math.log(2.0)   # 0.6931472
LN4 = math.log(4.0)   # 1.3862944


def test_clustering_loss_hand_computed():
  q = [[1.0, 0.0], [0.5, 0.5]]
  log_probs = np.log([[0.5, 0.5], [0.25, 0.75]])
  # Row 0: -(1 * ln 0.5 + 0) = ln 2 = 0.6931472.
  # Row 1: -(0.5 ln 0.25 + 0.5 ln 0.75) = 0.5 ln 4 + 0.5 ln(4/3)
  #      = 0.5 * 1.3862944 + 0.5 * 0.2876821 = 0.8369882.
  expected = [LN2, 0.5 * LN4 + 0.5 * math.log(4.0 / 3.0)]
  got = clustering_loss(q, log_probs)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_clustering_loss_onehot_q_is_cross_entropy():
  # q = onehot(y): -log p_y. p rows (0.1, 0.2, 0.7), (0.25, 0.25, 0.5);
  # y = (2, 0): -ln 0.7 = 0.3566749, -ln 0.25 = 1.3862944.
  probs = np.array([[0.1, 0.2, 0.7], [0.25, 0.25, 0.5]])
  q = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
  got = clustering_loss(q, np.log(probs)).numpy()
  np.testing.assert_allclose(got, [-math.log(0.7), LN4], rtol=1e-6)


@pytest.mark.parametrize("n, k", [(1, 2), (4, 3), (10, 6)])
def test_clustering_loss_matches_reference(n, k):
  rng = np.random.default_rng(n + k)
  logits = rng.normal(size=(n, k))
  log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  q = rng.uniform(size=(n, k))
  q /= q.sum(axis=1, keepdims=True)
  expected = [-sum(q[i, c] * log_probs[i, c] for c in range(k))
              for i in range(n)]
  got = clustering_loss(q.astype(np.float32), log_probs.astype(np.float32))
  assert got.shape == (n,)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


LOG_PROBS = np.log([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])
LABELS = [1, 2]


@pytest.mark.parametrize(
    "weights, expected",
    [
        # -ln 0.25 = 1.3862944, -ln 0.7 = 0.3566749.
        (None, [LN4, -math.log(0.7)]),
        ([1.0, 1.0], [LN4, -math.log(0.7)]),
        # 0.5 * 1.3862944 = 0.6931472; 0 * 0.3566749 = 0.
        ([0.5, 0.0], [LN2, 0.0]),
        # 0.25 * 1.3862944 = 0.3465736; 0.8 * 0.3566749 = 0.2853399.
        ([0.25, 0.8], [0.25 * LN4, -0.8 * math.log(0.7)]),
    ])
def test_weighted_source_loss_hand_computed(weights, expected):
  got = weighted_source_loss(LOG_PROBS, LABELS, weights)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_weighted_source_loss_label_dtypes_and_single_sample():
  # int64 labels and float64 weights; one sample, K = 2:
  # -0.5 * ln 0.25 = 0.5 * 1.3862944 = 0.6931472.
  got = weighted_source_loss(np.log([[0.75, 0.25]]),
                             tf.constant([1], tf.int64),
                             tf.constant([0.5], tf.float64))
  np.testing.assert_allclose(got.numpy(), [LN2], rtol=1e-6)


@pytest.mark.parametrize(
    "label_smoothing, weights, expected",
    [
        (0.0, None, [LN4, -math.log(0.7)]),
        # Row 0, y = 1, eps = 0.1, K = 3: 0.9 * ln 4 + 0.1 / 3 * (ln 2 +
        # ln 4 + ln 4) = 1.2476649 + 0.1155245 = 1.3631894.
        # Row 1, y = 2: 0.9 * -ln 0.7 + 0.1 / 3 * -(ln 0.1 + ln 0.2 + ln 0.7)
        # = 0.3210074 + 0.1422900 = 0.4632974.
        (0.1, None, [1.3631894, 0.4632974]),
        # The weights scale the smoothed loss: 0.5 * 1.3631894, 0.
        (0.1, [0.5, 0.0], [0.6815947, 0.0]),
    ])
def test_weighted_source_loss_label_smoothing_hand_computed(
    label_smoothing, weights, expected):
  got = weighted_source_loss(LOG_PROBS, LABELS, weights, label_smoothing)
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.0, 1.5])
def test_weighted_source_loss_refuses_label_smoothing_out_of_range(
    label_smoothing):
  with pytest.raises(ValueError, match=f"got {label_smoothing!r}"):
    weighted_source_loss(LOG_PROBS, LABELS, None, label_smoothing)


@pytest.mark.parametrize("n, k", [(1, 2), (5, 3), (12, 7)])
def test_weighted_source_loss_matches_reference(n, k):
  rng = np.random.default_rng(100 + n + k)
  logits = rng.normal(size=(n, k))
  log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  labels = rng.integers(0, k, size=n)
  weights = rng.uniform(size=n)
  expected = [-weights[j] * log_probs[j, labels[j]] for j in range(n)]
  got = weighted_source_loss(log_probs.astype(np.float32), labels,
                             weights.astype(np.float32))
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
  unweighted = weighted_source_loss(log_probs.astype(np.float32), labels)
  np.testing.assert_allclose(
      unweighted.numpy(), [-log_probs[j, labels[j]] for j in range(n)],
      rtol=1e-5)


@pytest.mark.parametrize("mean_probs, expected", [
    # Uniform: ln(1/4) * 1 + ln 4 = 0.
    ([0.25, 0.25, 0.25, 0.25], 0.0),
    # One class: 1 ln 1 + 0 ln 0 (taken as 0) + ln 4 = 1.3862944.
    ([1.0, 0.0, 0.0, 0.0], LN4),
    # 0.75 ln 0.75 + 0.25 ln 0.25 + ln 2
    #   = -0.2157616 - 0.3465736 + 0.6931472 = 0.1308120.
    ([0.75, 0.25], 0.75 * math.log(0.75) + 0.25 * math.log(0.25) + LN2),
])
def test_diversity_loss_hand_computed(mean_probs, expected):
  got = diversity_loss(tf.constant(mean_probs))
  assert got.dtype == tf.float32
  np.testing.assert_allclose(float(got), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("floor, expected", [
    # H(0.75, 0.25) = 0.5623351 = 0.8113 ln 2: balance 0.8113.
    (1.0, LN2 - 0.5623351),
    (0.9, 0.9 * LN2 - 0.5623351),   # 0.0615 below the floor.
    (0.8, 0.0),                     # Above the floor: no term.
    (0.0, 0.0),
])
def test_diversity_loss_floor_is_a_barrier(floor, expected):
  got = diversity_loss(tf.constant([0.75, 0.25]), floor)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-7)


def test_diversity_loss_gradient_moves_mass_to_the_rarer_class():
  mean_probs = tf.Variable([0.75, 0.25])
  with tf.GradientTape() as tape:
    loss = diversity_loss(mean_probs)
  # d/dp_k = ln p_k + 1: larger for the frequent class, so descent lowers it.
  np.testing.assert_allclose(tape.gradient(loss, mean_probs).numpy(),
                             [math.log(0.75) + 1, math.log(0.25) + 1],
                             rtol=1e-6)


@pytest.mark.parametrize("threshold, expected", [
    (0.0, [1.0, 1.0, 1.0]),
    # Largest probabilities 0.7, 0.5, 0.9: the boundary value is kept.
    (0.5, [1.0, 1.0, 1.0]),
    (0.7, [1.0, 0.0, 1.0]),
    (0.95, [0.0, 0.0, 0.0]),
])
def test_confidence_mask_hand_computed(threshold, expected):
  probs = [[0.1, 0.2, 0.7], [0.25, 0.25, 0.5], [0.9, 0.05, 0.05]]
  got = confidence_mask(probs, threshold)
  assert got.dtype == tf.float32
  np.testing.assert_array_equal(got.numpy(), expected)


def test_confidence_mask_is_a_constant_for_the_gradient():
  logits = tf.Variable([[2.0, 0.0], [0.0, 0.1]])
  with tf.GradientTape() as tape:
    mask = confidence_mask(tf.nn.softmax(logits), 0.6)
  assert tape.gradient(mask, logits) is None
  np.testing.assert_array_equal(mask.numpy(), [1.0, 0.0])


@pytest.mark.parametrize("threshold", [-0.1, 1.0])
def test_confidence_mask_refuses_threshold_out_of_range(threshold):
  with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\), got "
                     + str(threshold)):
    confidence_mask([[0.5, 0.5]], threshold)
