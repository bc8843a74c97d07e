"""The fused BatchNorm kernel computes what Keras' layer computes: outputs,
gradients and moving statistics, in training and inference, and swaps into
a backbone with its weights."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from srdc_tf.models import backbones
from srdc_tf.models import fused_batch_norm


def _pair(epsilon, momentum, shape):
  keras_layer = keras.layers.BatchNormalization(epsilon=epsilon,
                                                momentum=momentum)
  fused = fused_batch_norm.FusedBatchNormalization(epsilon=epsilon,
                                                   momentum=momentum)
  rng = np.random.default_rng(0)
  for layer in (keras_layer, fused):
    layer.build(shape)
  values = [rng.normal(1, 0.3, shape[-1]), rng.normal(0, 1, shape[-1]),
            rng.normal(0, 1, shape[-1]), rng.uniform(0.5, 2, shape[-1])]
  for layer in (keras_layer, fused):
    layer.set_weights([v.astype(np.float32) for v in values])
  return keras_layer, fused


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("epsilon, momentum", [(1e-3, 0.999),
                                               (1.001e-5, 0.99)])
def test_fused_layer_equals_keras_layer(training, epsilon, momentum):
  shape = (6, 5, 4, 8)
  keras_layer, fused = _pair(epsilon, momentum, shape)
  x = tf.constant(np.random.default_rng(1).normal(2, 3, shape), tf.float32)
  upstream = tf.constant(np.random.default_rng(2).normal(0, 1, shape),
                         tf.float32)
  grads = []
  outputs = []
  for layer in (keras_layer, fused):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=training)
      loss = tf.reduce_sum(y * upstream)
    outputs.append(y)
    grads.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
  np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
  for want, got in zip(*grads):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
  # The moving averages move alike (only in training): Keras' biased
  # batch variance, not the kernel's unbiased one.
  for want, got in zip(keras_layer.non_trainable_weights,
                       fused.non_trainable_weights):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
  if training:
    assert not np.allclose(fused.moving_variance, _pair(
        epsilon, momentum, shape)[1].moving_variance)


def test_other_inputs_take_keras_path():
  layer = fused_batch_norm.FusedBatchNormalization()
  flat = tf.random.normal((4, 3))
  np.testing.assert_allclose(layer(flat, training=True),
                             keras.layers.BatchNormalization()(flat,
                                                               training=True),
                             rtol=1e-5, atol=1e-5)


def test_a_backbone_is_swapped_with_its_weights_and_saves(tmp_path):
  keras.utils.set_random_seed(0)
  body, _ = backbones.build_body("mobilenet_v2", (32, 32, 3),
                                 fused_batch_norm=False)
  fused, count = fused_batch_norm.fuse_batch_norms(body)
  assert count == sum(isinstance(layer, keras.layers.BatchNormalization)
                      for layer in body.layers) > 0
  assert all(type(layer) is not keras.layers.BatchNormalization  # pylint: disable=unidiomatic-typecheck
             for layer in fused.layers)
  images = tf.random.uniform((3, 32, 32, 3), -1, 1, seed=0)
  np.testing.assert_allclose(fused(images), body(images), rtol=1e-4,
                             atol=1e-5)
  path = str(tmp_path / "fused.keras")
  fused.save(path)
  np.testing.assert_allclose(keras.models.load_model(path)(images),
                             fused(images), rtol=1e-6, atol=1e-6)
  lenet, count = fused_batch_norm.fuse_batch_norms(
      backbones.build_body("lenet", (28, 28, 1))[0])
  assert count == 0 and lenet.name == "lenet"
