"""Soft source sample selection (SRDC sec. 3.3)."""

import tensorflow as tf

from srdc_tf.clustering import distances


def source_weights(source_features, source_labels, target_centroids):
  """`w_j = (1 + cos(f_j, c_t[y_j])) / 2`, a weight in [0, 1] per sample.

  Source samples that look like the target cluster of their own class get
  weights near 1; atypical ones near 0.

  Args:
    source_features: `[N, D]` features of the source samples.
    source_labels: `[N]` int true labels.
    target_centroids: `[K, D]` target cluster centres.

  Returns:
    `[N]` float32 tensor.
  """
  own = tf.gather(target_centroids, tf.cast(source_labels, tf.int32))
  cosine = tf.reduce_sum(
      distances.l2_normalize(source_features) * distances.l2_normalize(own),
      axis=1)
  return tf.clip_by_value((1.0 + cosine) / 2.0, 0.0, 1.0)
