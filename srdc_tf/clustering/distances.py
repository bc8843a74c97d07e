"""Chunked distances that never hold an [N, K, D] tensor.

The passes over all samples (nearest centres, per-cluster sums) run as one
TensorFlow graph each, over `chunk_size` rows at a time: the features are
read in place (slices of a tensor share its memory) and only a couple of
chunks' temporaries (`chunk_size x K` scores) exist at once.
"""

import tensorflow as tf

from srdc_tf.clustering import arrays

DEFAULT_CHUNK_SIZE = 8192
# Chunks in flight at once: bounds memory to a few chunks' temporaries.
PARALLEL_CHUNKS = 2


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


def check_chunk_size(chunk_size):
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be > 0, got {chunk_size!r}")


# === Graph building blocks (called inside tf.function) ===


def prepare_centres(centres, spherical):
  """`(centres, norms)` for `assign_chunk`: unit centres when spherical,
  else the centres and their squared norms `[1, K]`."""
  if spherical:
    return l2_normalize(centres), None
  return centres, tf.reduce_sum(tf.square(centres), axis=1)[tf.newaxis, :]


def chunk_rows(features, chunk_size, index, spherical):
  """Rows `[index * chunk_size, (index + 1) * chunk_size)`, unit rows when
  spherical. The slice shares the features' memory."""
  rows = features[index * chunk_size:(index + 1) * chunk_size]
  return l2_normalize(rows) if spherical else rows


def assign_chunk(rows, centres, norms, spherical):
  """Index of the nearest centre of every row of one chunk."""
  scores = tf.matmul(rows, centres, transpose_b=True)
  if spherical:
    return tf.argmax(scores, axis=1, output_type=tf.int32)
  # ||a||^2 is constant per row, so the argmin needs only ||b||^2 - 2 a.b.
  return tf.argmin(norms - 2.0 * scores, axis=1, output_type=tf.int32)


def num_chunks(features, chunk_size):
  return (tf.shape(features)[0] + chunk_size - 1) // chunk_size


def nearest_centre_graph(features, centres, chunk_size, spherical):
  """`nearest_centre` as graph ops; `chunk_size` may be a tensor."""
  centres, norms = prepare_centres(centres, spherical)
  chunks = num_chunks(features, chunk_size)
  parts = tf.TensorArray(tf.int32, size=chunks, infer_shape=False,
                         element_shape=tf.TensorShape([None]))

  def body(index, parts):
    rows = chunk_rows(features, chunk_size, index, spherical)
    return index + 1, parts.write(
        index, assign_chunk(rows, centres, norms, spherical))

  _, parts = tf.while_loop(lambda index, _: index < chunks, body,
                           (tf.constant(0), parts),
                           parallel_iterations=PARALLEL_CHUNKS)
  return parts.concat()


_SIGNATURE = (tf.TensorSpec([None, None], tf.float32),
              tf.TensorSpec([None, None], tf.float32),
              tf.TensorSpec([], tf.int32))
_NEAREST_CENTRE = {
    spherical: tf.function(
        lambda f, c, size, spherical=spherical: nearest_centre_graph(
            f, c, size, spherical),
        input_signature=_SIGNATURE)
    for spherical in (False, True)}


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
  check_chunk_size(chunk_size)
  features = arrays.as_float32(features)
  centres = tf.cast(centres, tf.float32)
  if int(features.shape[0]) == 0:
    return tf.zeros([0], tf.int32)
  return _NEAREST_CENTRE[bool(spherical)](features, centres,
                                          tf.constant(chunk_size, tf.int32))
