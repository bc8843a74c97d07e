"""Chunked distances that never hold an [N, K, D] tensor."""

import tensorflow as tf

DEFAULT_CHUNK_SIZE = 8192


def l2_normalize(x):
  return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=1, epsilon=1e-12)


def squared_distances(features, centres):
  """Squared Euclidean distances `||a||^2 + ||b||^2 - 2 a.b`, clipped at 0.

  Args:
    features: `[N, D]` tensor.
    centres: `[K, D]` tensor.

  Returns:
    `[N, K]` float32 tensor.
  """
  features = tf.cast(features, tf.float32)
  centres = tf.cast(centres, tf.float32)
  squared = (
      tf.reduce_sum(tf.square(features), axis=1, keepdims=True)
      + tf.reduce_sum(tf.square(centres), axis=1)[tf.newaxis, :]
      - 2.0 * tf.matmul(features, centres, transpose_b=True))
  return tf.maximum(squared, 0.0)


def nearest_centre(features, centres, spherical=False,
                   chunk_size=DEFAULT_CHUNK_SIZE):
  """Index of the nearest centre of every row, `chunk_size` rows at a time.

  Peak memory is `chunk_size x K` distances on top of the inputs.

  Args:
    features: `[N, D]` tensor.
    centres: `[K, D]` tensor.
    spherical: nearest by cosine similarity instead of Euclidean distance.
    chunk_size: rows per chunk, > 0.

  Returns:
    `[N]` int32 tensor.
  """
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be > 0, got {chunk_size!r}")
  features = tf.cast(features, tf.float32)
  centres = tf.cast(centres, tf.float32)
  if spherical:
    features, centres = l2_normalize(features), l2_normalize(centres)
  # ||a||^2 is constant per row, so the argmin needs only ||b||^2 - 2 a.b.
  centre_norms = tf.reduce_sum(tf.square(centres), axis=1)[tf.newaxis, :]
  chunks = []
  for start in range(0, int(features.shape[0]), chunk_size):
    scores = tf.matmul(features[start:start + chunk_size], centres,
                       transpose_b=True)
    if spherical:
      chunks.append(tf.argmax(scores, axis=1, output_type=tf.int32))
    else:
      chunks.append(tf.argmin(centre_norms - 2.0 * scores, axis=1,
                              output_type=tf.int32))
  if not chunks:
    return tf.zeros([0], tf.int32)
  return tf.concat(chunks, axis=0)
