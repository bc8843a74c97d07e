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


def confidence_mask(probs, threshold):
  """Which target samples the clustering loss keeps: those whose largest
  predicted probability is at least `threshold`.

  Args:
    probs: `[N, K]` predicted probabilities.
    threshold: in [0, 1); 0 keeps every sample.

  Returns:
    `[N]` float32 tensor of 0s and 1s, a constant for the gradient.

  Raises:
    ValueError: `threshold` is outside [0, 1).
  """
  if not 0.0 <= threshold < 1.0:
    raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
  confidence = tf.reduce_max(tf.cast(probs, tf.float32), axis=1)
  return tf.stop_gradient(
      tf.cast(confidence >= threshold, tf.float32))


def weighted_source_loss(log_probs, labels, weights=None,
                         label_smoothing=0.0):
  """Per-sample weighted cross-entropy `-w_j log p_{j, y_j}` (eq. 8).

  With `label_smoothing = eps > 0` the one-hot label becomes
  `(1 - eps) onehot(y_j) + eps / K` (beyond the paper), so the loss is
  `-w_j ((1 - eps) log p_{j, y_j} + eps / K sum_k log p_jk)`.

  Args:
    log_probs: `[N, K]` log soft assignments.
    labels: `[N]` int true labels.
    weights: optional `[N]` source weights in [0, 1]; 1 when None.
    label_smoothing: eps in [0, 1).

  Returns:
    `[N]` float32 tensor.

  Raises:
    ValueError: `label_smoothing` is outside [0, 1).
  """
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(
        f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
  log_probs = tf.cast(log_probs, tf.float32)
  picked = tf.gather(log_probs, tf.cast(labels, tf.int32), axis=1,
                     batch_dims=1)
  losses = -picked
  if label_smoothing:
    uniform = -tf.reduce_mean(log_probs, axis=1)
    losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
  if weights is not None:
    losses = losses * tf.cast(weights, tf.float32)
  return losses


def diversity_loss(mean_probs, floor=1.0):
  """`max(0, floor * log K - H(pbar))`; `floor = 1`: `KL(pbar || uniform)`.

  Beyond the paper. With `floor = 1` it is SHOT's diversity term (Liang et
  al. 2020): 0 when the batch's mean prediction `pbar` is uniform, `log K`
  when every sample goes to one class, so it resists the herding of the
  target into a few clusters that the clustering loss alone rewards on a
  hard shift, and it also pulls an imbalanced target towards balance. With
  `floor < 1` it is a barrier: 0 while the balance `H(pbar) / log K` is at
  least `floor`, so it acts on a collapsing batch only. The uniform
  reference is chosen a priori: the target's class balance is unknown, and
  the source's (USPS, say) may be far from it.

  Args:
    mean_probs: `[K]` mean soft assignment over the (global) target batch.
    floor: the balance in [0, 1] below which the term acts.

  Returns:
    Scalar float32 tensor, at least 0.
  """
  mean_probs = tf.cast(mean_probs, tf.float32)
  log_k = tf.math.log(tf.cast(tf.shape(mean_probs)[0], tf.float32))
  # xlogy: 0 log 0 = 0 for a class no sample is assigned to.
  entropy = -tf.reduce_sum(tf.math.xlogy(mean_probs, mean_probs))
  return tf.nn.relu(floor * log_k - entropy)
