"""K-means with fixed initial centres and a fixed number of iterations."""

import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering import centroids as centroids_lib
from srdc_tf.clustering import distances
from srdc_tf.clustering import shards as shards_lib


def _cluster_sums_graph(features, centres, chunk_size, spherical):
  """One pass over the features: each row's nearest centre, summed per
  cluster chunk by chunk, as `([K, D] sums, [K] int32 counts)`."""
  num_clusters = tf.shape(centres)[0]
  chunks = distances.num_chunks(features, chunk_size)
  prepared, norms = distances.prepare_centres(centres, spherical)

  def chunk(index, sums, counts):
    rows = distances.chunk_rows(features, chunk_size, index, spherical)
    assignments = distances.assign_chunk(rows, prepared, norms, spherical)
    chunk_sums, chunk_counts = centroids_lib.class_sums(
        rows, assignments, num_clusters)
    return index + 1, sums + chunk_sums, counts + chunk_counts

  _, sums, counts = tf.while_loop(
      lambda index, *_: index < chunks, chunk,
      (tf.constant(0), tf.zeros_like(centres),
       tf.zeros([num_clusters], tf.int32)),
      parallel_iterations=distances.PARALLEL_CHUNKS)
  return sums, counts


_CLUSTER_SUMS = {
    spherical: tf.function(
        lambda f, c, size, spherical=spherical: _cluster_sums_graph(
            f, c, size, spherical),
        input_signature=(tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([], tf.int32)))
    for spherical in (False, True)}


EMPTY_CLUSTERS = ("keep", "zero")


def _check_settings(iterations, chunk_size, empty_clusters):
  if iterations < 0:
    raise ValueError(f"iterations must be >= 0, got {iterations!r}")
  distances.check_chunk_size(chunk_size)
  if empty_clusters not in EMPTY_CLUSTERS:
    raise ValueError(f"empty_clusters must be one of {EMPTY_CLUSTERS}, got "
                     f"{empty_clusters!r}")


def kmeans(features, initial_centres, iterations=5, spherical=False,
           chunk_size=distances.DEFAULT_CHUNK_SIZE, empty_clusters="keep"):
  """Lloyd's k-means from given centres, Euclidean or spherical.

  Each iteration assigns every sample to its nearest centre, then moves each
  centre to the mean of its samples. A cluster that loses every sample keeps
  its previous centre (`empty_clusters="keep"`) or becomes the zero vector
  (`"zero"`, what the released code's division by `count + eps` gives).
  Spherical k-means compares and averages directions: samples are
  L2-normalised and so are the centres it returns.

  Each iteration is one pass over the features, `chunk_size` rows at a
  time (assignment and per-cluster sums together), and the features are
  never copied (see `arrays.as_float32`): memory beyond them is
  `chunk_size x (K + D)` values.

  Args:
    features: `[N, D]` tensor.
    initial_centres: `[K, D]` tensor.
    iterations: number of assign-update rounds, >= 0.
    spherical: use cosine similarity and unit-norm centres.
    chunk_size: rows per distance chunk (bounds peak memory).
    empty_clusters: "keep" or "zero", the new centre of an empty cluster.

  Returns:
    `(assignments, centres)`: `[N]` int32 assignment to the returned
    `[K, D]` float32 centres (the assignment of the last round is redone
    against the final centres, so the two agree).
  """
  _check_settings(iterations, chunk_size, empty_clusters)
  features = arrays.as_float32(features)
  if int(features.shape[0]) == 0:
    centres = tf.cast(initial_centres, tf.float32)
    return tf.zeros([0], tf.int32), (distances.l2_normalize(centres)
                                     if spherical else centres)
  assignments, centres = sharded_kmeans(
      [features], initial_centres, iterations, spherical,
      chunk_size=chunk_size, empty_clusters=empty_clusters)
  return assignments[0], centres


def sharded_kmeans(features, initial_centres, iterations=5, spherical=False,
                   sum_over_shards=shards_lib.local_sum,
                   chunk_size=distances.DEFAULT_CHUNK_SIZE,
                   empty_clusters="keep"):
  """`kmeans` of samples split into shards: every iteration sums each
  shard's per-cluster sums and counts over all shards (see
  `clustering.shards`), so every process moves the centres alike and holds
  only its own shards' samples.

  Args:
    features: this process' shards' `[n_s, D]` features, a list.
    initial_centres: `[K, D]` tensor, the same on every process.
    iterations: number of assign-update rounds, >= 0.
    spherical: use cosine similarity and unit-norm centres.
    sum_over_shards: sums a per-shard list over every shard.
    chunk_size: rows per distance chunk (bounds peak memory).
    empty_clusters: "keep" or "zero", the new centre of an empty cluster.

  Returns:
    `(assignments, centres)`: a list of each shard's `[n_s]` int32
    assignment, and the `[K, D]` float32 centres of all samples.
  """
  _check_settings(iterations, chunk_size, empty_clusters)
  features = [arrays.as_float32(shard) for shard in features]
  centres = tf.cast(initial_centres, tf.float32)
  if spherical:
    centres = distances.l2_normalize(centres)
  size = tf.constant(chunk_size, tf.int32)
  for _ in range(iterations):
    sums, counts = shards_lib.sum_statistics(
        [_CLUSTER_SUMS[bool(spherical)](shard, centres, size)
         for shard in features], sum_over_shards)
    # A cluster that lost every sample keeps its previous centre, or becomes
    # the zero vector (the released code's `sums / (counts + eps)`).
    fallback = (tf.zeros_like(centres) if empty_clusters == "zero"
                else centres)
    centres = centroids_lib.means_or_fallback(sums, counts, fallback)
    if spherical:
      centres = distances.l2_normalize(centres)
  assignments = [distances.nearest_centre(shard, centres, spherical,
                                          chunk_size) for shard in features]
  return assignments, centres
