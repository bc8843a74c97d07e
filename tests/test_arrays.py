"""Tests of srdc_tf.clustering.arrays: aligned float32 arrays are read in
place by the clustering, with the results of a copy."""

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering.centroids import class_centroids
from srdc_tf.clustering.distances import nearest_centre
from srdc_tf.clustering.epoch_state import compute_epoch_state
from srdc_tf.clustering.kmeans import kmeans
from srdc_tf.clustering.source_weights import source_weights


def _aligned(values):
  out = arrays.aligned_empty(np.shape(values))
  out[...] = values
  return out


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 2048), (5,)])
def test_aligned_empty(shape):
  out = arrays.aligned_empty(shape)
  assert out.shape == shape and out.dtype == np.float32
  assert out.flags.c_contiguous and out.flags.writeable
  assert out.ctypes.data % arrays.ALIGNMENT == 0


def test_aligned_array_is_shared_not_copied():
  values = _aligned(np.arange(12, dtype=np.float32).reshape(4, 3))
  tensor = arrays.as_float32(values)
  assert tensor.dtype == tf.float32
  values[2, 1] = -5.0  # The tensor reads the array's memory.
  assert float(tensor[2, 1]) == -5.0


@pytest.mark.parametrize("value", [
    np.arange(6, dtype=np.float64).reshape(2, 3),  # Another dtype.
    np.arange(12, dtype=np.float32).reshape(4, 3)[:, :2],  # Not contiguous.
    [[1.0, 2.0], [3.0, 4.0]],  # Not an array.
])
def test_other_inputs_are_converted(value):
  tensor = arrays.as_float32(value)
  assert tensor.dtype == tf.float32
  np.testing.assert_array_equal(tensor.numpy(), np.asarray(value, np.float32))


def test_unaligned_float32_array_is_copied():
  buffer = arrays.aligned_empty((13,))
  values = buffer[1:].reshape(4, 3)  # 4 bytes past a 64-byte boundary.
  values[...] = 1.0
  tensor = arrays.as_float32(values)
  values[0, 0] = 7.0
  assert float(tensor[0, 0]) == 1.0


def test_read_only_array_is_converted():
  values = _aligned(np.ones((4, 3), np.float32))
  values.flags.writeable = False
  np.testing.assert_array_equal(arrays.as_float32(values).numpy(), values)


@pytest.mark.parametrize("d", [3, 16])
@pytest.mark.parametrize("chunk_size", [1, 5, 1000])
def test_clustering_in_place_matches_copied_inputs(d, chunk_size):
  # D = 3 with small chunks slices rows off the 64-byte boundaries.
  rng = np.random.default_rng(d + chunk_size)
  k, n = 4, 37
  features = rng.normal(size=(n, d)).astype(np.float32)
  labels = rng.integers(0, k, n).astype(np.int32)
  centres = features[:k] + 0.5
  aligned = _aligned(features)
  for spherical in (False, True):
    np.testing.assert_array_equal(
        nearest_centre(aligned, centres, spherical, chunk_size).numpy(),
        nearest_centre(features.tolist(), centres, spherical,
                       chunk_size).numpy())
    got, expected = (kmeans(x, centres, 3, spherical, chunk_size)
                     for x in (aligned, features.tolist()))
    np.testing.assert_array_equal(got[0].numpy(), expected[0].numpy())
    np.testing.assert_allclose(got[1].numpy(), expected[1].numpy(),
                               rtol=1e-6)
  np.testing.assert_allclose(
      class_centroids(aligned, labels, k, chunk_size=chunk_size)[0].numpy(),
      class_centroids(features.tolist(), labels, k,
                      chunk_size=chunk_size)[0].numpy(), rtol=1e-6)
  np.testing.assert_allclose(
      source_weights(aligned, labels, centres, chunk_size).numpy(),
      source_weights(features.tolist(), labels, centres, chunk_size).numpy(),
      rtol=1e-6)
  np.testing.assert_array_equal(aligned, features)  # Read, never written.


def test_epoch_state_on_aligned_features_matches_copies():
  rng = np.random.default_rng(3)
  k, n = 3, 40
  inputs = [rng.normal(size=(n, 8)).astype(np.float32),
            rng.normal(size=(n, 5)).astype(np.float32),
            rng.integers(0, k, n),
            rng.normal(size=(n, 8)).astype(np.float32) + 1.0,
            rng.normal(size=(n, 5)).astype(np.float32),
            rng.integers(0, k, n)]
  aligned = [_aligned(x) if x.dtype == np.float32 else x for x in inputs]
  copied = [x.tolist() for x in inputs]
  got = compute_epoch_state(*aligned, k, first_epoch=False)
  expected = compute_epoch_state(*copied, k, first_epoch=False)
  np.testing.assert_array_equal(got.pseudo_labels.numpy(),
                                expected.pseudo_labels.numpy())
  for field in ("centres_f", "centres_h", "source_weights"):
    np.testing.assert_allclose(getattr(got, field).numpy(),
                               getattr(expected, field).numpy(), rtol=1e-6)
