"""Tests of srdc_tf.objectives.auxiliary (q and the pseudo-label mixing)."""

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.objectives.auxiliary import auxiliary_distribution
from srdc_tf.objectives.auxiliary import mix_with_pseudo_labels


def _reference_q(probs, cluster_mass=None):
  """Independent float64 reference of q_ik, written loop by loop."""
  probs = np.asarray(probs, np.float64)
  n, k = probs.shape
  if cluster_mass is None:
    cluster_mass = [sum(probs[i, c] for i in range(n)) for c in range(k)]
  q = np.zeros((n, k))
  for i in range(n):
    row = [probs[i, c] / np.sqrt(cluster_mass[c]) for c in range(k)]
    total = sum(row)
    for c in range(k):
      q[i, c] = row[c] / total
  return q


def _random_probs(rng, n, k):
  logits = rng.normal(size=(n, k))
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_hand_computed_q():
  probs = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]]
  # s = (4, 1), sqrt(s) = (2, 1).
  # Rows [1, 0]: (1/2, 0) -> (1, 0).
  # Rows [0.5, 0.5]: (0.5/2, 0.5/1) = (0.25, 0.5) -> (1/3, 2/3).
  expected = [[1.0, 0.0]] * 3 + [[1.0 / 3.0, 2.0 / 3.0]] * 2
  got = auxiliary_distribution(probs)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_hand_computed_q_uniform_rows():
  probs = [[0.8, 0.2]] * 5
  # s = (4, 1): (0.8/2, 0.2/1) = (0.4, 0.2) -> (2/3, 1/3): the smaller
  # cluster is boosted relative to p.
  got = auxiliary_distribution(probs).numpy()
  np.testing.assert_allclose(got, [[2.0 / 3.0, 1.0 / 3.0]] * 5, rtol=1e-6)


def test_single_sample_q_is_p_scaled_by_sqrt_p():
  # N = 1: s_k = p_k, so q_k = sqrt(p_k) / sum sqrt(p_k').
  # p = (0.64, 0.36): sqrt = (0.8, 0.6) -> (0.8/1.4, 0.6/1.4) = (4/7, 3/7).
  got = auxiliary_distribution([[0.64, 0.36]]).numpy()
  np.testing.assert_allclose(got, [[4.0 / 7.0, 3.0 / 7.0]], rtol=1e-6)


@pytest.mark.parametrize(
    "probs, cluster_mass, expected",
    [
        # (0.5/2, 0.5/1) = (0.25, 0.5) -> (1/3, 2/3).
        ([[0.5, 0.5]], [4.0, 1.0], [[1.0 / 3.0, 2.0 / 3.0]]),
        # (0.6/3, 0.1/1, 0.3/2) = (0.2, 0.1, 0.15), sum 0.45
        # -> (4/9, 2/9, 3/9).
        ([[0.6, 0.1, 0.3]], [9.0, 1.0, 4.0], [[4 / 9, 2 / 9, 3 / 9]]),
        # Equal masses leave p unchanged.
        ([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], [5.0, 5.0, 5.0],
         [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]),
    ])
def test_cluster_mass_argument(probs, cluster_mass, expected):
  got = auxiliary_distribution(probs, cluster_mass=cluster_mass).numpy()
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_global_cluster_mass_matches_full_batch():
  # Under a strategy each replica passes the global s_k; its rows of q must
  # then be those of q on the whole (global) batch.
  rng = np.random.default_rng(0)
  probs = _random_probs(rng, 8, 3)
  full = auxiliary_distribution(probs).numpy()
  mass = probs.sum(axis=0)
  first = auxiliary_distribution(probs[:4], cluster_mass=mass).numpy()
  second = auxiliary_distribution(probs[4:], cluster_mass=mass).numpy()
  np.testing.assert_allclose(np.concatenate([first, second]), full,
                             rtol=1e-5)
  # And the local default differs from the global one here.
  local = auxiliary_distribution(probs[:4]).numpy()
  assert np.max(np.abs(local - first)) > 1e-3


@pytest.mark.parametrize("n, k", [(1, 2), (2, 2), (7, 3), (16, 5)])
def test_matches_reference_and_rows_sum_to_one(n, k):
  rng = np.random.default_rng(10 * n + k)
  probs = _random_probs(rng, n, k)
  got = auxiliary_distribution(probs).numpy()
  np.testing.assert_allclose(got, _reference_q(probs), rtol=1e-5)
  np.testing.assert_allclose(got.sum(axis=1), np.ones(n), rtol=1e-6)


def test_stop_gradient_value_unchanged():
  rng = np.random.default_rng(3)
  probs = _random_probs(rng, 6, 4)
  np.testing.assert_array_equal(
      auxiliary_distribution(probs, stop_gradient=True).numpy(),
      auxiliary_distribution(probs, stop_gradient=False).numpy())


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_gradient_through_q(stop_gradient):
  rng = np.random.default_rng(4)
  probs_np = _random_probs(rng, 5, 3)
  # A fixed, non-constant weighting: sum_ik q_ik c_ik (sum of q alone is
  # constant N because rows sum to 1, so its gradient would be 0 anyway).
  weights = rng.normal(size=(5, 3))
  probs = tf.constant(probs_np)
  with tf.GradientTape() as tape:
    tape.watch(probs)
    objective = tf.reduce_sum(
        auxiliary_distribution(probs, stop_gradient=stop_gradient)
        * tf.constant(weights, tf.float32))
  grad = tape.gradient(objective, probs,
                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
  if stop_gradient:
    np.testing.assert_array_equal(grad.numpy(), np.zeros((5, 3)))
    return
  # Central finite differences of the float64 reference.
  eps = 1e-6
  numeric = np.zeros((5, 3))
  base = probs_np.astype(np.float64)
  for i in range(5):
    for c in range(3):
      plus, minus = base.copy(), base.copy()
      plus[i, c] += eps
      minus[i, c] -= eps
      numeric[i, c] = (np.sum(_reference_q(plus) * weights)
                       - np.sum(_reference_q(minus) * weights)) / (2 * eps)
  assert np.max(np.abs(numeric)) > 0.1
  np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_clustering_gradient_wrt_logits(stop_gradient):
  # L = -sum_i sum_k q_ik log softmax(x)_ik. With q a constant whose rows
  # sum to 1, dL/dx = p - q exactly. With gradient through q it differs.
  rng = np.random.default_rng(5)
  logits = tf.constant(rng.normal(size=(6, 3)), tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(logits)
    probs = tf.nn.softmax(logits)
    q = auxiliary_distribution(probs, stop_gradient=stop_gradient)
    loss = -tf.reduce_sum(q * tf.nn.log_softmax(logits))
  grad = tape.gradient(loss, logits).numpy()
  constant_q_grad = (probs - q).numpy()
  if stop_gradient:
    np.testing.assert_allclose(grad, constant_q_grad, rtol=1e-5, atol=1e-6)
  else:
    assert np.max(np.abs(grad - constant_q_grad)) > 1e-2


Q = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
LABELS = [2, 0]


@pytest.mark.parametrize(
    "beta, expected",
    [
        (0.0, [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),  # onehot(2), onehot(0)
        (1.0, Q),
        # 0.5 * onehot + 0.5 * q:
        # [0, 0, 0.5] + [0.1, 0.15, 0.25] = [0.1, 0.15, 0.75]
        # [0.5, 0, 0] + [0.3, 0.15, 0.05] = [0.8, 0.15, 0.05]
        (0.5, [[0.1, 0.15, 0.75], [0.8, 0.15, 0.05]]),
        # 0.75 * onehot + 0.25 * q:
        # [0, 0, 0.75] + [0.05, 0.075, 0.125] = [0.05, 0.075, 0.875]
        # [0.75, 0, 0] + [0.15, 0.075, 0.025] = [0.9, 0.075, 0.025]
        (0.25, [[0.05, 0.075, 0.875], [0.9, 0.075, 0.025]]),
    ])
def test_mix_with_pseudo_labels(beta, expected):
  got = mix_with_pseudo_labels(Q, LABELS, beta)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(got.numpy().sum(axis=1), [1.0, 1.0], rtol=1e-6)
  # beta as a tensor and int64 labels give the same answer.
  got_tensor = mix_with_pseudo_labels(
      tf.constant(Q, tf.float64), tf.constant(LABELS, tf.int64),
      tf.constant(beta))
  np.testing.assert_allclose(got_tensor.numpy(), expected, rtol=1e-6,
                             atol=1e-7)


def test_mix_single_sample_k2():
  # beta = 0.5, q = [0.9, 0.1], label 1: [0.45, 0.05] + [0, 0.5] = [0.45, 0.55].
  got = mix_with_pseudo_labels([[0.9, 0.1]], [1], 0.5).numpy()
  np.testing.assert_allclose(got, [[0.45, 0.55]], rtol=1e-6)


def test_zero_mass_cluster_gives_zero_not_nan():
  # Column 2 has p = 0 in every row (s_2 = 0): its q is 0 and the other
  # columns are q of the two-column problem. s = (0.7, 1.3):
  # row 0: (0.5/sqrt0.7, 0.5/sqrt1.3) = (0.5976143, 0.4385290) -> normalised.
  probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0]], np.float32)
  got = auxiliary_distribution(probs).numpy()
  expected = np.concatenate([_reference_q(probs[:, :2]), np.zeros((2, 1))],
                            axis=1)
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
  row0 = np.array([0.5 / np.sqrt(0.7), 0.5 / np.sqrt(1.3)])
  np.testing.assert_allclose(got[0, :2], row0 / row0.sum(), rtol=1e-6)
  # Same with an explicit (global) mass that is zero for that cluster.
  got = auxiliary_distribution(probs, cluster_mass=[0.7, 1.3, 0.0]).numpy()
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("stop_gradient", [True, False])
def test_saturated_softmax_loss_and_gradient_are_finite(beta, stop_gradient):
  # A logit gap of 120 underflows float32 softmax to exactly 0 for class 0
  # in every row, so s_0 = 0. q is then onehot(1) = pseudo-labels, and the
  # loss -sum q log p = -log p_1 = log(1 + e^-120) ~ 0; gradients finite.
  logits = tf.constant([[0.0, 120.0], [1.0, 125.0]])
  with tf.GradientTape() as tape:
    tape.watch(logits)
    probs = tf.nn.softmax(logits)
    assert np.all(probs.numpy()[:, 0] == 0.0)
    q = auxiliary_distribution(probs, stop_gradient=stop_gradient)
    q = mix_with_pseudo_labels(q, [1, 1], beta)
    loss = -tf.reduce_sum(q * tf.nn.log_softmax(logits))
  np.testing.assert_allclose(q.numpy(), [[0.0, 1.0], [0.0, 1.0]], atol=1e-7)
  np.testing.assert_allclose(loss.numpy(), 0.0, atol=1e-6)
  grad = tape.gradient(loss, logits).numpy()
  assert np.all(np.isfinite(grad))
  np.testing.assert_allclose(grad, np.zeros((2, 2)), atol=1e-6)
