"""Tests of srdc_tf.objectives.assignments (Student-t kernel, SRDC eq. 5)."""

import re

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.objectives.assignments import feature_assignment_logits


def _naive_kernel(features, centres, alpha):
  """Independent reference: explicit [N, K, D] differences, float64."""
  features = np.asarray(features, np.float64)
  centres = np.asarray(centres, np.float64)
  diff = features[:, None, :] - centres[None, :, :]
  squared = np.sum(diff * diff, axis=2)
  return (1.0 + squared / alpha) ** (-(alpha + 1.0) / 2.0)


def test_hand_computed_alpha_one():
  features = [[0.0, 0.0], [1.0, 1.0]]
  centres = [[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]]
  # Row 0: ||z - mu||^2 = 0, 25, 1  -> 1 / (1 + d2) = 1, 1/26, 1/2.
  # Row 1: ||z - mu||^2 = 2, 13, 1  -> 1/3, 1/14, 1/2.
  expected = [[1.0, 1.0 / 26.0, 0.5], [1.0 / 3.0, 1.0 / 14.0, 0.5]]
  got = feature_assignment_logits(features, centres)
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "alpha, expected",
    [
        # d2 = ||[0,0,0] - [1,1,2]||^2 = 1 + 1 + 4 = 6.
        (1.0, 1.0 / 7.0),    # (1 + 6/1)^(-2/2) = 7^-1
        (2.0, 1.0 / 8.0),    # (1 + 6/2)^(-3/2) = 4^-1.5 = 1/8
        (3.0, 1.0 / 9.0),    # (1 + 6/3)^(-4/2) = 3^-2 = 1/9
        (6.0, 2.0 ** -3.5),  # (1 + 6/6)^(-7/2) = 2^-3.5
        (0.5, 13.0 ** -0.75),  # (1 + 6/0.5)^(-1.5/2) = 13^-0.75
    ])
def test_hand_computed_alpha(alpha, expected):
  got = feature_assignment_logits([[0.0, 0.0, 0.0]], [[1.0, 1.0, 2.0]],
                                  alpha=alpha)
  np.testing.assert_allclose(got.numpy(), [[expected]], rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 7.0])
@pytest.mark.parametrize("n, k, d", [(1, 2, 3), (5, 2, 4), (9, 4, 6)])
def test_matches_naive_reference(n, k, d, alpha):
  rng = np.random.default_rng(n * 100 + k * 10 + d)
  features = rng.normal(size=(n, d)).astype(np.float32)
  centres = rng.normal(size=(k, d)).astype(np.float32)
  got = feature_assignment_logits(features, centres, alpha=alpha).numpy()
  assert got.shape == (n, k)
  np.testing.assert_allclose(
      got, _naive_kernel(features, centres, alpha), rtol=1e-5, atol=1e-7)
  assert np.all(got > 0.0) and np.all(got <= 1.0)


def test_identical_points_give_kernel_one():
  # Every feature equals a centre: distance 0 -> kernel exactly 1 (the
  # squared distance is clipped at 0, so round-off can never exceed 1).
  points = np.array([[0.3, -1.7, 2.2], [0.3, -1.7, 2.2]], np.float32)
  got = feature_assignment_logits(points, points[:1]).numpy()
  np.testing.assert_allclose(got, [[1.0], [1.0]], rtol=1e-6)
  assert np.all(got <= 1.0)


def test_softmax_of_kernel_is_ptilde():
  # ptilde = softmax_k(kernel); for row [1, 1/26, 1/2]:
  # exp(1), exp(1/26), exp(1/2) normalised.
  kernel = feature_assignment_logits([[0.0, 0.0]],
                                     [[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
  ptilde = tf.nn.softmax(kernel, axis=1).numpy()
  e = np.exp([1.0, 1.0 / 26.0, 0.5])
  np.testing.assert_allclose(ptilde, [e / e.sum()], rtol=1e-6)
  np.testing.assert_allclose(ptilde.sum(axis=1), [1.0], rtol=1e-6)


def test_accepts_float64_and_int_inputs():
  got = feature_assignment_logits(np.array([[0, 0]], np.int32),
                                  np.array([[3.0, 4.0]], np.float64))
  assert got.dtype == tf.float32
  np.testing.assert_allclose(got.numpy(), [[1.0 / 26.0]], rtol=1e-6)


@pytest.mark.parametrize("alpha", [0, 0.0, -1.0, -0.5])
def test_rejects_non_positive_alpha(alpha):
  with pytest.raises(ValueError, match=re.escape(f"got {alpha!r}")):
    feature_assignment_logits([[0.0]], [[1.0]], alpha=alpha)


def test_normalized_kernel_softmax_is_the_kernel_over_its_sum():
  features = np.array([[0.0, 0.0], [3.0, 1.0]], np.float32)
  centres = np.array([[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], np.float32)
  # Squared distances: [[1, 4, 50], [5, 10, 20]]; alpha = 1: kernel 1 / (1 + d).
  kernel = 1.0 / (1.0 + np.array([[1.0, 4.0, 50.0], [5.0, 10.0, 20.0]]))
  logits = feature_assignment_logits(features, centres,
                                     assignment="normalized_kernel")
  np.testing.assert_allclose(logits.numpy(), np.log(kernel), rtol=1e-5)
  np.testing.assert_allclose(tf.nn.softmax(logits).numpy(),
                             kernel / kernel.sum(1, keepdims=True), rtol=1e-5)


def test_rejects_unknown_assignment():
  with pytest.raises(ValueError, match="'gaussian'"):
    feature_assignment_logits([[0.0]], [[1.0]], assignment="gaussian")
