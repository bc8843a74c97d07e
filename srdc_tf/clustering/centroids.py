"""Class centroids of features grouped by (true or predicted) label."""

import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering import distances
from srdc_tf.clustering import shards as shards_lib

# Up to this many classes a one-hot matmul sums the rows of each class
# faster than unsorted_segment_sum (a scatter); beyond it the matmul's
# K x N x D multiply-adds cost more (measured on 8192 x 2048 chunks).
ONE_HOT_MAX_CLASSES = 64


def class_sums(rows, labels, num_classes):
  """`([K, D] sums, [K] int32 counts)` of the rows of each class."""
  counts = tf.math.bincount(labels, minlength=num_classes,
                            maxlength=num_classes, dtype=tf.int32)
  sums = tf.cond(
      num_classes <= ONE_HOT_MAX_CLASSES,
      lambda: tf.matmul(tf.one_hot(labels, num_classes, dtype=rows.dtype),
                        rows, transpose_a=True),
      lambda: tf.math.unsorted_segment_sum(rows, labels, num_classes))
  return sums, counts


def means_or_fallback(sums, counts, fallback):
  """`sums / counts` per class; the `fallback` row where a count is 0."""
  means = sums / tf.cast(tf.maximum(counts, 1), tf.float32)[:, tf.newaxis]
  return tf.where((counts == 0)[:, tf.newaxis], fallback, means)


def _sums_graph(features, labels, num_classes, chunk_size):
  chunks = distances.num_chunks(features, chunk_size)

  def body(index, sums, counts):
    rows = features[index * chunk_size:(index + 1) * chunk_size]
    chunk_sums, chunk_counts = class_sums(
        rows, labels[index * chunk_size:(index + 1) * chunk_size],
        num_classes)
    return index + 1, sums + chunk_sums, counts + chunk_counts

  _, sums, counts = tf.while_loop(
      lambda index, *_: index < chunks, body,
      (tf.constant(0), tf.zeros([num_classes, tf.shape(features)[1]]),
       tf.zeros([num_classes], tf.int32)),
      parallel_iterations=distances.PARALLEL_CHUNKS)
  return sums, counts


_SUMS = tf.function(_sums_graph, input_signature=(
    tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32),
    tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)))


def feature_class_sums(features, labels, num_classes,
                       chunk_size=distances.DEFAULT_CHUNK_SIZE):
  """`([K, D] sums, [K] int32 counts)` of the features of every class,
  `chunk_size` rows at a time (read in place, see `arrays.as_float32`)."""
  distances.check_chunk_size(chunk_size)
  features = arrays.as_float32(features)
  return _SUMS(features, tf.cast(labels, tf.int32),
               tf.constant(num_classes, tf.int32),
               tf.constant(chunk_size, tf.int32))


def class_centroids(features, labels, num_classes, fallback=None,
                    chunk_size=distances.DEFAULT_CHUNK_SIZE):
  """Mean feature of every class.

  Args:
    features: `[N, D]` tensor (read in place, see `arrays.as_float32`).
    labels: `[N]` int tensor in `[0, num_classes)`.
    num_classes: K.
    fallback: optional `[K, D]` tensor whose rows stand in for classes with
      no sample. Zeros when None.
    chunk_size: rows summed at a time, > 0.

  Returns:
    `(centroids, counts)`: `[K, D]` float32 and `[K]` int32 tensors.
  """
  return sharded_class_centroids([features], [labels], num_classes,
                                 fallback=fallback, chunk_size=chunk_size)


def sharded_class_centroids(features, labels, num_classes, fallback=None,
                            sum_over_shards=shards_lib.local_sum,
                            chunk_size=distances.DEFAULT_CHUNK_SIZE):
  """`class_centroids` of samples split into shards, from the shards'
  summed per-class sums and counts (see `clustering.shards`).

  Args:
    features: this process' shards' `[n_s, D]` features, a list.
    labels: their `[n_s]` int labels, a list.
    num_classes: K.
    fallback: optional `[K, D]` rows for classes with no sample anywhere.
    sum_over_shards: sums a per-shard list over every shard.
    chunk_size: rows summed at a time, > 0.

  Returns:
    `(centroids, counts)` of all the shards' samples together.
  """
  sums, counts = shards_lib.sum_statistics(
      [feature_class_sums(shard, shard_labels, num_classes, chunk_size)
       for shard, shard_labels in zip(features, labels)], sum_over_shards)
  fallback = (tf.zeros_like(sums) if fallback is None
              else tf.cast(fallback, tf.float32))
  return means_or_fallback(sums, counts, fallback), counts
