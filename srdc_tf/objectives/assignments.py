"""Soft cluster assignments at a feature layer (SRDC eq. 5)."""

import tensorflow as tf


def feature_assignment_logits(features, centres, alpha=1.0):
  """Student-t kernel between features and centres, as softmax logits.

  SRDC takes a softmax over k of the Student-t kernel
  `(1 + ||z_i - mu_k||^2 / alpha)^(-(alpha + 1) / 2)`, so the kernel value
  itself is the logit: `softmax(feature_assignment_logits(z, mu))` is
  `ptilde`, and `log_softmax` of it is the stable `log ptilde`.

  Args:
    features: `[N, D]` float tensor `z`.
    centres: `[K, D]` float tensor `mu`.
    alpha: degrees of freedom of the Student-t kernel, > 0.

  Returns:
    `[N, K]` float32 tensor of kernel values in (0, 1].
  """
  if alpha <= 0:
    raise ValueError(f"alpha must be > 0, got {alpha!r}")
  features = tf.cast(features, tf.float32)
  centres = tf.cast(centres, tf.float32)
  # ||z||^2 + ||mu||^2 - 2 z.mu avoids an [N, K, D] difference tensor.
  squared = (
      tf.reduce_sum(tf.square(features), axis=1, keepdims=True)
      + tf.reduce_sum(tf.square(centres), axis=1)[tf.newaxis, :]
      - 2.0 * tf.matmul(features, centres, transpose_b=True))
  squared = tf.maximum(squared, 0.0)
  return tf.pow(1.0 + squared / alpha, -(alpha + 1.0) / 2.0)
