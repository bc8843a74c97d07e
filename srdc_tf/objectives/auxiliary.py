"""The auxiliary target distribution q of SRDC's clustering step."""

import tensorflow as tf


def auxiliary_distribution(probs, cluster_mass=None, stop_gradient=False):
  """Closed-form auxiliary distribution q of eq. 1's Q-step.

  `q_ik = (p_ik / sqrt(s_k)) / sum_k' (p_ik' / sqrt(s_k'))` with
  `s_k = sum_i p_ik`, the soft size of cluster k over the mini-batch.

  Args:
    probs: `[N, K]` soft assignments p (rows sum to 1).
    cluster_mass: optional `[K]` tensor `s_k`. Under a distribution strategy
      pass the sum over every replica's batch so that q matches the one of a
      single replica on the global batch. Defaults to `sum_i p_ik` locally.
    stop_gradient: treat q as a constant. The released code does not (its
      gradient through q also balances clusters); see SRDC.md.

  Returns:
    `[N, K]` float32 tensor whose rows sum to 1.
  """
  probs = tf.cast(probs, tf.float32)
  if cluster_mass is None:
    cluster_mass = tf.reduce_sum(probs, axis=0)
  cluster_mass = tf.cast(cluster_mass, tf.float32)
  # A cluster with zero mass has p_ik = 0 for every i; its q_ik is then 0
  # (the limit of p_ik / sqrt(s_k) <= sqrt(s_k)), not 0 / 0 = NaN.
  cluster_mass = tf.where(cluster_mass > 0.0, cluster_mass, 1.0)
  unnormalised = probs / tf.sqrt(cluster_mass)[tf.newaxis, :]
  q = unnormalised / tf.reduce_sum(unnormalised, axis=1, keepdims=True)
  return tf.stop_gradient(q) if stop_gradient else q


def mix_with_pseudo_labels(q, pseudo_labels, beta):
  """`(1 - beta) * onehot(pseudo_labels) + beta * q`.

  Args:
    q: `[N, K]` auxiliary distribution.
    pseudo_labels: `[N]` int k-means pseudo-labels of the same samples.
    beta: scalar in [0, 1]; 1 keeps q, 0 keeps the pseudo-labels.

  Returns:
    `[N, K]` float32 tensor whose rows sum to 1.
  """
  q = tf.cast(q, tf.float32)
  onehot = tf.one_hot(pseudo_labels, tf.shape(q)[1], dtype=tf.float32)
  beta = tf.cast(beta, tf.float32)
  return (1.0 - beta) * onehot + beta * q
