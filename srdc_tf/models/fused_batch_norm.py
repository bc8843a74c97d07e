"""BatchNormalization through TensorFlow's fused kernel.

Keras 3's `BatchNormalization` computes the moments and the normalisation
as separate element-wise ops (`ops.moments`, `ops.batch_normalization`),
forward and backward: about half of a float32 ResNet-50 training step on a
CPU. TensorFlow's `FusedBatchNormV3` does a 4-D NHWC layer's moments,
normalisation and gradient in one kernel each, as PyTorch does.
`FusedBatchNormalization` is Keras' layer with that kernel where it
applies (4-D inputs normalised over the last axis, with scale and offset,
no mask, renorm or cross-replica synchronisation) and Keras' own
computation everywhere else; its moving averages are Keras' (the biased
batch variance: the fused kernel returns the unbiased one, which is
rescaled). `fuse_batch_norms` swaps every `BatchNormalization` of a
functional model for it, weights kept.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="srdc_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
  """`keras.layers.BatchNormalization` through the fused kernel (see the
  module docstring); the same arguments, weights and config."""

  def _fusable(self, inputs, mask):
    return (mask is None and len(inputs.shape) == 4
            and self.axis in (3, -1) and self.scale and self.center
            and not self.renorm and not self.synchronized
            and keras.backend.backend() == "tensorflow")

  def call(self, inputs, training=None, mask=None):
    if not self._fusable(inputs, mask):
      return super().call(inputs, training=training, mask=mask)
    # As Keras: the statistics in float32 also for bfloat16 inputs.
    x = tf.cast(inputs, tf.float32)
    gamma = tf.cast(self.gamma, tf.float32)
    beta = tf.cast(self.beta, tf.float32)
    if training and self.trainable:
      y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
          x, gamma, beta, epsilon=self.epsilon, data_format="NHWC",
          is_training=True)
      count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
      # The kernel applies Bessel's correction; Keras averages the biased.
      variance = unbiased * (count - 1.0) / tf.maximum(count, 1.0)
      momentum = self.momentum
      self.moving_mean.assign(
          tf.cast(self.moving_mean, tf.float32) * momentum
          + mean * (1.0 - momentum))
      self.moving_variance.assign(
          tf.cast(self.moving_variance, tf.float32) * momentum
          + variance * (1.0 - momentum))
    else:
      y, _, _ = tf.compat.v1.nn.fused_batch_norm(
          x, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
          variance=tf.cast(self.moving_variance, tf.float32),
          epsilon=self.epsilon, data_format="NHWC", is_training=False)
    return tf.cast(y, self.compute_dtype)


def fuse_batch_norms(model):
  """A copy of a functional model with every `BatchNormalization` a
  `FusedBatchNormalization` of the same config, and the same weights.

  Args:
    model: a functional `keras.Model` (e.g. a `keras.applications` one).

  Returns:
    `(model, count)`: the new model, and how many layers were swapped (0:
    the model itself is returned).
  """
  swapped = [0]

  def clone(layer):
    if type(layer) is keras.layers.BatchNormalization:  # pylint: disable=unidiomatic-typecheck
      swapped[0] += 1
      return FusedBatchNormalization.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())

  if not any(type(layer) is keras.layers.BatchNormalization  # pylint: disable=unidiomatic-typecheck
             for layer in model.layers):
    return model, 0
  fused = keras.models.clone_model(model, clone_function=clone)
  fused.set_weights(model.get_weights())
  fused.trainable = model.trainable
  return fused, swapped[0]
