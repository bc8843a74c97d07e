"""SRDC's per-sample losses; the model reduces them over the global batch."""

import tensorflow as tf


def clustering_loss(q, log_probs):
  """Per-sample target clustering loss `-sum_k q_ik log p_ik`.

  Args:
    q: `[N, K]` target distribution (auxiliary, possibly mixed).
    log_probs: `[N, K]` log soft assignments `log p`.

  Returns:
    `[N]` float32 tensor.
  """
  return -tf.reduce_sum(
      tf.cast(q, tf.float32) * tf.cast(log_probs, tf.float32), axis=1)


def weighted_source_loss(log_probs, labels, weights=None):
  """Per-sample weighted cross-entropy `-w_j log p_{j, y_j}` (eq. 8).

  Args:
    log_probs: `[N, K]` log soft assignments.
    labels: `[N]` int true labels.
    weights: optional `[N]` source weights in [0, 1]; 1 when None.

  Returns:
    `[N]` float32 tensor.
  """
  log_probs = tf.cast(log_probs, tf.float32)
  picked = tf.gather(log_probs, tf.cast(labels, tf.int32), axis=1,
                     batch_dims=1)
  losses = -picked
  if weights is not None:
    losses = losses * tf.cast(weights, tf.float32)
  return losses
