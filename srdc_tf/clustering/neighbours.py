"""Target labels voted by each sample's nearest target neighbours.

Beyond the paper (`--refinement_epochs`): once SRDC's clustering has
settled, most of a classifier's remaining errors on a pretrained feature
space are isolated samples whose nearest neighbours it labels right. A vote
of a sample and its k nearest neighbours (cosine similarity of `f`) mends
them; training the last epochs on the voted labels puts the vote into the
model itself, so an export carries it without the target's features.
"""

import numpy as np
import tensorflow as tf

from srdc_tf.clustering import distances

# Rows of the similarity matrix computed at once: [chunk, N] float32.
DEFAULT_CHUNK_SIZE = 2048


def nearest_neighbours(features, k, chunk_size=DEFAULT_CHUNK_SIZE):
  """Each sample's k most cosine-similar other samples.

  Args:
    features: `[N, D]` features.
    k: neighbours per sample, in [1, N - 1].
    chunk_size: rows of the similarity matrix held at once (memory
      `chunk_size * N` floats).

  Returns:
    `[N, k]` int32 indices, the most similar first; a sample is never its
    own neighbour (ties between equal rows break by index).

  Raises:
    ValueError: `features` is not 2-D, or k is outside [1, N - 1].
  """
  features = tf.convert_to_tensor(features, tf.float32)
  if features.shape.rank != 2:
    raise ValueError(f"features must be [N, D], got shape {features.shape}")
  count = int(features.shape[0])
  if not 1 <= int(k) <= count - 1:
    raise ValueError(f"k must be in [1, {count - 1}] for {count} samples, "
                     f"got {k!r}")
  distances.check_chunk_size(chunk_size)
  unit = distances.l2_normalize(features)
  chunks = []
  for start in range(0, count, chunk_size):
    rows = unit[start:start + chunk_size]
    similarity = tf.matmul(rows, unit, transpose_b=True)
    # -inf on the diagonal: a sample does not vote twice.
    own = tf.range(start, start + int(rows.shape[0]))
    similarity = tf.tensor_scatter_nd_update(
        similarity,
        tf.stack([own - start, own], axis=1),
        tf.fill(tf.shape(own), float("-inf")))
    chunks.append(tf.math.top_k(similarity, k=int(k)).indices)
  return tf.concat(chunks, axis=0)


def neighbour_vote(probabilities, neighbours):
  """The class with the most probability over a sample and its neighbours.

  Args:
    probabilities: `[N, K]` predicted class probabilities.
    neighbours: `[N, k]` int indices of each sample's neighbours
      (`nearest_neighbours`).

  Returns:
    `[N]` int32 labels: `argmax_c (p_i[c] + sum_j p_{n_ij}[c])`.

  Raises:
    ValueError: the two disagree on N.
  """
  probabilities = tf.convert_to_tensor(probabilities, tf.float32)
  neighbours = tf.convert_to_tensor(neighbours, tf.int32)
  if probabilities.shape[0] != neighbours.shape[0]:
    raise ValueError(f"probabilities have {probabilities.shape[0]} rows and "
                     f"neighbours {neighbours.shape[0]}")
  votes = probabilities + tf.reduce_sum(
      tf.gather(probabilities, neighbours), axis=1)
  return tf.argmax(votes, axis=1, output_type=tf.int32)


def voted_labels(features, logits, k):
  """`neighbour_vote` of the softmax of `logits` over `f`'s neighbours.

  Args:
    features: `[N, D]` target features `f`.
    logits: `[N, K]` the classifier's target logits.
    k: neighbours per sample.

  Returns:
    `[N]` int32 voted labels.
  """
  probabilities = tf.nn.softmax(tf.convert_to_tensor(logits, tf.float32))
  return neighbour_vote(probabilities, nearest_neighbours(features, k))


def changed_fraction(voted, predictions):
  """Share of samples whose voted label differs from the prediction."""
  return float(np.mean(np.asarray(voted) != np.asarray(predictions)))
