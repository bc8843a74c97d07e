"""K-means with fixed initial centres and a fixed number of iterations."""

import tensorflow as tf

from srdc_tf.clustering import centroids as centroids_lib
from srdc_tf.clustering import distances


def kmeans(features, initial_centres, iterations=5, spherical=False,
           chunk_size=distances.DEFAULT_CHUNK_SIZE):
  """Lloyd's k-means from given centres, Euclidean or spherical.

  Each iteration assigns every sample to its nearest centre, then moves each
  centre to the mean of its samples. A cluster that loses every sample keeps
  its previous centre. Spherical k-means compares and averages directions:
  samples are L2-normalised and so are the centres it returns.

  Args:
    features: `[N, D]` tensor.
    initial_centres: `[K, D]` tensor.
    iterations: number of assign-update rounds, >= 0.
    spherical: use cosine similarity and unit-norm centres.
    chunk_size: rows per distance chunk (bounds peak memory).

  Returns:
    `(assignments, centres)`: `[N]` int32 assignment to the returned
    `[K, D]` float32 centres (the assignment of the last round is redone
    against the final centres, so the two agree).
  """
  if iterations < 0:
    raise ValueError(f"iterations must be >= 0, got {iterations!r}")
  features = tf.cast(features, tf.float32)
  centres = tf.cast(initial_centres, tf.float32)
  if spherical:
    features = distances.l2_normalize(features)
    centres = distances.l2_normalize(centres)
  num_clusters = int(centres.shape[0])
  for _ in range(iterations):
    assignments = distances.nearest_centre(features, centres, spherical,
                                           chunk_size)
    centres, _ = centroids_lib.class_centroids(
        features, assignments, num_clusters, fallback=centres)
    if spherical:
      centres = distances.l2_normalize(centres)
  assignments = distances.nearest_centre(features, centres, spherical,
                                         chunk_size)
  return assignments, centres
