"""Class centroids of features grouped by (true or predicted) label."""

import tensorflow as tf


def class_centroids(features, labels, num_classes, fallback=None):
  """Mean feature of every class.

  Args:
    features: `[N, D]` tensor.
    labels: `[N]` int tensor in `[0, num_classes)`.
    num_classes: K.
    fallback: optional `[K, D]` tensor whose rows stand in for classes with
      no sample. Zeros when None.

  Returns:
    `(centroids, counts)`: `[K, D]` float32 and `[K]` int32 tensors.
  """
  features = tf.cast(features, tf.float32)
  labels = tf.cast(labels, tf.int32)
  sums = tf.math.unsorted_segment_sum(features, labels, num_classes)
  counts = tf.math.bincount(labels, minlength=num_classes,
                            maxlength=num_classes, dtype=tf.int32)
  safe = tf.cast(tf.maximum(counts, 1), tf.float32)[:, tf.newaxis]
  centroids = sums / safe
  if fallback is None:
    fallback = tf.zeros_like(centroids)
  empty = (counts == 0)[:, tf.newaxis]
  return tf.where(empty, tf.cast(fallback, tf.float32), centroids), counts
