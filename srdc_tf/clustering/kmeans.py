"""K-means with fixed initial centres and a fixed number of iterations."""

import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering import centroids as centroids_lib
from srdc_tf.clustering import distances


def _lloyd_graph(features, centres, iterations, chunk_size, zero_empty,
                 spherical):
  """Lloyd's iterations as graph ops: one pass over the features per
  iteration (nearest centres and per-cluster sums, chunk by chunk), then
  one for the final assignment."""
  if spherical:
    centres = distances.l2_normalize(centres)
  num_clusters = tf.shape(centres)[0]
  chunks = distances.num_chunks(features, chunk_size)

  def iteration(step, centres):
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
    # A cluster that lost every sample keeps its previous centre, or becomes
    # the zero vector (the released code's `sums / (counts + eps)`).
    fallback = tf.where(zero_empty, tf.zeros_like(centres), centres)
    updated = centroids_lib.means_or_fallback(sums, counts, fallback)
    if spherical:
      updated = distances.l2_normalize(updated)
    return step + 1, updated

  _, centres = tf.while_loop(lambda step, _: step < iterations, iteration,
                             (tf.constant(0), centres))
  assignments = distances.nearest_centre_graph(features, centres, chunk_size,
                                               spherical)
  return assignments, centres


_LLOYD = {
    spherical: tf.function(
        lambda f, c, iterations, size, zero, spherical=spherical: (
            _lloyd_graph(f, c, iterations, size, zero, spherical)),
        input_signature=(tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([], tf.int32),
                         tf.TensorSpec([], tf.int32),
                         tf.TensorSpec([], tf.bool)))
    for spherical in (False, True)}


EMPTY_CLUSTERS = ("keep", "zero")


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
  if iterations < 0:
    raise ValueError(f"iterations must be >= 0, got {iterations!r}")
  distances.check_chunk_size(chunk_size)
  if empty_clusters not in EMPTY_CLUSTERS:
    raise ValueError(f"empty_clusters must be one of {EMPTY_CLUSTERS}, got "
                     f"{empty_clusters!r}")
  features = arrays.as_float32(features)
  centres = tf.cast(initial_centres, tf.float32)
  if int(features.shape[0]) == 0:
    if spherical:
      centres = distances.l2_normalize(centres)
    return tf.zeros([0], tf.int32), centres
  return _LLOYD[bool(spherical)](features, centres,
                                 tf.constant(iterations, tf.int32),
                                 tf.constant(chunk_size, tf.int32),
                                 tf.constant(empty_clusters == "zero"))
