"""Tests of srdc_tf.objectives.schedules (lambda ramp and lr annealing)."""

import math
import re

import numpy as np
import pytest

from srdc_tf.objectives.schedules import dao_learning_rate
from srdc_tf.objectives.schedules import penalty_ramp


@pytest.mark.parametrize("epochs", [1, 10, 200])
def test_penalty_ramp_starts_at_zero(epochs):
  assert penalty_ramp(0, epochs) == 0.0


# 2 / (1 + e^-x) - 1 = (1 - e^-x) / (1 + e^-x) = tanh(x / 2), x = 10 e / E.
@pytest.mark.parametrize(
    "epoch, epochs, expected",
    [
        (10, 100, 0.46211715726),   # x = 1:   tanh(0.5)
        (1, 10, 0.46211715726),     # x = 1:   tanh(0.5)
        (2, 10, 0.76159415596),     # x = 2:   tanh(1)
        (50, 200, 0.84828363996),   # x = 2.5: tanh(1.25)
        (100, 100, 0.99990920426),  # x = 10:  tanh(5)
    ])
def test_penalty_ramp_hand_values(epoch, epochs, expected):
  np.testing.assert_allclose(penalty_ramp(epoch, epochs), expected,
                             rtol=1e-9)


@pytest.mark.parametrize("epochs", [1, 7, 200])
def test_penalty_ramp_closed_form_and_monotone(epochs):
  values = [penalty_ramp(e, epochs) for e in range(epochs + 1)]
  expected = [2.0 / (1.0 + math.exp(-10.0 * e / epochs)) - 1.0
              for e in range(epochs + 1)]
  np.testing.assert_allclose(values, expected, rtol=1e-12, atol=0)
  np.testing.assert_allclose(
      values, [math.tanh(5.0 * e / epochs) for e in range(epochs + 1)],
      rtol=1e-12, atol=1e-15)
  assert all(a < b for a, b in zip(values, values[1:]))
  assert all(0.0 <= v < 1.0 for v in values)


def test_penalty_ramp_warmup_of_one_epoch_is_the_paper():
  for epoch in range(21):
    assert penalty_ramp(epoch, 20, warmup_epochs=1) == penalty_ramp(epoch, 20)


# W = 3 of E = 20: lambda 0 for epochs 0-2, then tanh(5 (e - 2) / 18).
@pytest.mark.parametrize(
    "epoch, expected",
    [(0, 0.0), (1, 0.0), (2, 0.0),
     (3, 0.27084711852),    # tanh(5 / 18)
     (11, 0.98661429815),   # tanh(2.5): halfway through the ramp
     (20, 0.99990920426)])  # tanh(5): the paper's last value
def test_penalty_ramp_after_a_warmup(epoch, expected):
  np.testing.assert_allclose(penalty_ramp(epoch, 20, warmup_epochs=3),
                             expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize("warmup_epochs", [0, -1, 21])
def test_penalty_ramp_rejects_a_warmup_outside_the_run(warmup_epochs):
  with pytest.raises(ValueError, match=re.escape(
      f"warmup_epochs must be in [1, epochs=20], got {warmup_epochs!r}")):
    penalty_ramp(0, 20, warmup_epochs=warmup_epochs)


@pytest.mark.parametrize(
    "epoch, base_lr, epochs, expected",
    [
        (0, 0.01, 200, 0.01),                 # (1 + 0)^0.75 = 1
        (20, 0.01, 200, 0.01 / 2 ** 0.75),    # 1 + 10*20/200 = 2 -> 0.0059460
        (60, 0.1, 40, 0.0125),                # 1 + 15 = 16, 16^0.75 = 8
        (15, 1.0, 10, 0.125),                 # 1 + 15 = 16 -> 1 / 8
        (3, 0.4, 2, 0.05),                    # 1 + 15 = 16 -> 0.4 / 8
        (200, 0.01, 200, 0.0016556002608),    # 11^0.75 = 6.0401054
    ])
def test_dao_learning_rate_values(epoch, base_lr, epochs, expected):
  np.testing.assert_allclose(dao_learning_rate(epoch, base_lr, epochs),
                             expected, rtol=1e-9)


@pytest.mark.parametrize("epochs", [0, -1, -200])
@pytest.mark.parametrize("function", [
    penalty_ramp, lambda e, n: dao_learning_rate(e, 0.01, n)])
def test_rejects_non_positive_epochs(function, epochs):
  with pytest.raises(ValueError, match=re.escape(f"epochs must be > 0, got "
                                                 f"{epochs!r}")):
    function(0, epochs)


@pytest.mark.parametrize("epoch", [-1, -0.5, -10])
@pytest.mark.parametrize("function", [
    penalty_ramp, lambda e, n: dao_learning_rate(e, 0.01, n)])
def test_rejects_negative_epoch(function, epoch):
  with pytest.raises(ValueError, match=re.escape(f"epoch must be >= 0, got "
                                                 f"{epoch!r}")):
    function(epoch, 10)


# === The learning-rate callback and the momentum convention ===

def _sgd_run(convention, lrs, gradients):
  """Weights of a one-weight model after SGD with momentum 0.9, one epoch
  per learning rate of `lrs`, driven by `DaoLearningRate`'s hook."""
  import keras  # pylint: disable=g-import-not-at-top
  from srdc_tf.callbacks import schedules  # pylint: disable=g-import-not-at-top
  weight = keras.Variable(np.zeros(1, np.float32))
  optimizer = keras.optimizers.SGD(lrs[0], momentum=0.9)
  optimizer.build([weight])
  callback = schedules.DaoLearningRate(1.0, 1, convention)
  callback.schedule = lambda epoch, lr: lrs[epoch]
  callback.set_model(type("M", (), {"optimizer": optimizer})())
  for epoch, epoch_gradients in enumerate(gradients):
    callback.on_epoch_begin(epoch)
    for g in epoch_gradients:
      optimizer.apply_gradients([(np.array([g], np.float32), weight)])
  return float(np.asarray(weight)[0])


def _torch_sgd(lrs, gradients, momentum=0.9):
  w, buf = 0.0, None
  for lr, epoch_gradients in zip(lrs, gradients):
    for g in epoch_gradients:
      buf = g if buf is None else momentum * buf + g
      w -= lr * buf
  return w


@pytest.mark.parametrize("lrs", [(0.1, 0.05, 0.02), (0.3, 0.3, 0.01)])
def test_pytorch_momentum_convention_gives_pytorch_updates(lrs):
  gradients = [(1.0, -2.0, 0.5), (3.0, 1.0), (-1.0, 2.0, 2.0)]
  expected = _torch_sgd(lrs, gradients)
  np.testing.assert_allclose(_sgd_run("pytorch", lrs, gradients), expected,
                             rtol=1e-5)
  keras_convention = _sgd_run("keras", lrs, gradients)
  if lrs[0] != lrs[1] or lrs[1] != lrs[2]:
    assert abs(keras_convention - expected) > 1e-3


def test_rejects_unknown_momentum_convention():
  from srdc_tf.callbacks import schedules  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="'nesterov'"):
    schedules.DaoLearningRate(0.1, 10, "nesterov")
