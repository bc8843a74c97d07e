"""Tests of the bottleneck BatchNorm recalibration."""

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.callbacks import batch_norm as batch_norm_callback
from srdc_tf.models import batch_norm
from srdc_tf.models import srdc_model


@pytest.mark.parametrize("sizes", [[7], [3, 4], [1, 1, 5, 2], [0, 6, 1]])
def test_running_moments_equal_the_moments_of_all_rows(sizes):
  rows = np.random.default_rng(0).normal(3.0, 2.0, (sum(sizes), 4))
  moments = batch_norm.RunningMoments()
  start = 0
  for size in sizes:
    moments.update(rows[start:start + size])
    start += size
  assert moments.count == len(rows)
  np.testing.assert_allclose(moments.mean, rows.mean(axis=0), rtol=1e-12)
  np.testing.assert_allclose(moments.variance, rows.var(axis=0), rtol=1e-12)


def test_running_moments_by_hand():
  moments = batch_norm.RunningMoments()
  moments.update([[1.0], [3.0]])
  moments.update([[5.0]])
  # Mean 3, deviations -2, 0, 2: population variance 8 / 3.
  np.testing.assert_allclose(moments.mean, [3.0])
  np.testing.assert_allclose(moments.variance, [8.0 / 3.0])


@pytest.mark.parametrize("batch, message", [
    (np.zeros(3), r"expected a \[n, d\] batch, got shape \(3,\)"),
])
def test_running_moments_reject_bad_input(batch, message):
  with pytest.raises(ValueError, match=message):
    batch_norm.RunningMoments().update(batch)
  with pytest.raises(ValueError, match="no rows were added"):
    _ = batch_norm.RunningMoments().mean


def _model_and_data(n=50, dim=6):
  model = srdc_model.SRDCModel(None, num_classes=3, input_shape=(dim,),
                               num_source_examples=n, num_target_examples=n,
                               bottleneck_dim=4)
  features = np.random.default_rng(1).normal(2.0, 3.0, (n, dim)).astype(
      np.float32)
  dataset = tf.data.Dataset.from_tensor_slices(
      (features, np.zeros(n, np.int32), np.arange(n))).batch(16)
  return model, features, dataset


def test_recalibration_sets_the_exact_moments_of_fc1():
  model, features, dataset = _model_and_data()
  mean, variance = batch_norm.recalibrate_bottleneck_norm(model, dataset)
  projected = features @ model.fc1.kernel.numpy() + model.fc1.bias.numpy()
  np.testing.assert_allclose(mean, projected.mean(axis=0), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(variance, projected.var(axis=0), rtol=1e-5)
  np.testing.assert_allclose(model.fc1_norm.moving_mean.numpy(), mean)
  np.testing.assert_allclose(model.fc1_norm.moving_variance.numpy(), variance)
  # In inference mode h is now standardised over the domain: mean beta (0),
  # standard deviation gamma (1), up to BatchNorm's epsilon.
  normalised = model.fc1_norm(model.fc1(features), training=False).numpy()
  np.testing.assert_allclose(normalised.mean(axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(normalised.std(axis=0), 1.0, rtol=1e-3)


def test_callback_recalibrates_after_the_last_step_only():
  model, _, dataset = _model_and_data()
  callback = batch_norm_callback.BatchNormRecalibration(dataset)
  callback.set_model(model)
  callback.set_params({"steps": 3, "epochs": 1})
  untouched = model.fc1_norm.moving_mean.numpy().copy()
  callback.on_train_batch_end(0)
  callback.on_train_batch_end(1)
  np.testing.assert_array_equal(model.fc1_norm.moving_mean.numpy(), untouched)
  callback.on_train_batch_end(2)
  assert not np.allclose(model.fc1_norm.moving_mean.numpy(), untouched)
