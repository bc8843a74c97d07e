"""Soft source sample selection (SRDC sec. 3.3)."""

import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering import centroids as centroids_lib
from srdc_tf.clustering import distances


def _weights_graph(features, labels, centroids, chunk_size):
  units = distances.l2_normalize(centroids)
  chunks = distances.num_chunks(features, chunk_size)
  parts = tf.TensorArray(tf.float32, size=chunks, infer_shape=False,
                         element_shape=tf.TensorShape([None]))

  def body(index, parts):
    rows = features[index * chunk_size:(index + 1) * chunk_size]
    own = labels[index * chunk_size:(index + 1) * chunk_size]
    # f . unit(c_own): with few classes, all of f . unit(c) in one matmul is
    # cheaper than gathering a [rows, D] copy of the own centres.
    dot = tf.cond(
        tf.shape(units)[0] <= centroids_lib.ONE_HOT_MAX_CLASSES,
        lambda: tf.gather(tf.matmul(rows, units, transpose_b=True),
                          own[:, tf.newaxis], axis=1, batch_dims=1)[:, 0],
        lambda: tf.reduce_sum(rows * tf.gather(units, own), axis=1))
    # cos(f, c) = (f . unit(c)) / ||f||, as tf.math.l2_normalize guards it.
    cosine = dot * tf.math.rsqrt(
        tf.maximum(tf.reduce_sum(tf.square(rows), axis=1), 1e-12))
    return index + 1, parts.write(
        index, tf.clip_by_value((1.0 + cosine) / 2.0, 0.0, 1.0))

  _, parts = tf.while_loop(lambda index, _: index < chunks, body,
                           (tf.constant(0), parts),
                           parallel_iterations=distances.PARALLEL_CHUNKS)
  return parts.concat()


_WEIGHTS = tf.function(_weights_graph, input_signature=(
    tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32),
    tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([], tf.int32)))


def source_weights(source_features, source_labels, target_centroids,
                   chunk_size=distances.DEFAULT_CHUNK_SIZE):
  """`w_j = (1 + cos(f_j, c_t[y_j])) / 2`, a weight in [0, 1] per sample.

  Source samples that look like the target cluster of their own class get
  weights near 1; atypical ones near 0. Computed `chunk_size` rows at a
  time, without copying the features.

  Args:
    source_features: `[N, D]` features of the source samples.
    source_labels: `[N]` int true labels.
    target_centroids: `[K, D]` target cluster centres.
    chunk_size: rows per chunk, > 0.

  Returns:
    `[N]` float32 tensor.
  """
  distances.check_chunk_size(chunk_size)
  features = arrays.as_float32(source_features)
  if int(features.shape[0]) == 0:
    return tf.zeros([0], tf.float32)
  return _WEIGHTS(features, tf.cast(source_labels, tf.int32),
                  tf.cast(target_centroids, tf.float32),
                  tf.constant(chunk_size, tf.int32))
