"""The per-epoch state of samples split into shards equals the unsharded
one: centroids and k-means from summed per-cluster statistics, per-sample
tables gathered exactly."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf import distribute
from srdc_tf.clustering import centroids
from srdc_tf.clustering import epoch_state
from srdc_tf.clustering.kmeans import sharded_kmeans
from srdc_tf.clustering import shards
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 4


def _domains(seed=0, num_source=53, num_target=61, dim_f=6, dim_h=5):
  rng = np.random.default_rng(seed)
  means = rng.normal(0, 4, (K, dim_f + dim_h))
  source_labels = rng.integers(0, K, num_source).astype(np.int32)
  target_truth = rng.integers(0, K, num_target)
  source = means[source_labels] + rng.normal(0, 1, (num_source, dim_f + dim_h))
  target = (means[target_truth] + 1.5
            + rng.normal(0, 1, (num_target, dim_f + dim_h)))
  # Noisy predictions that never name class 3: an empty predicted class.
  predictions = np.where(rng.uniform(size=num_target) < 0.7, target_truth,
                         rng.integers(0, K, num_target)).astype(np.int32)
  predictions[predictions == 3] = 2
  split = lambda x: (x[:, :dim_f].astype(np.float32),  # pylint: disable=g-long-lambda
                     x[:, dim_f:].astype(np.float32))
  return (*split(source), source_labels), (*split(target), predictions)


def _shards(f, h, labels, num_shards):
  """Strided shards, as `pipeline.eval_dataset(..., shard=)` makes."""
  return [shards.Shard(f[i::num_shards], h[i::num_shards],
                       labels[i::num_shards],
                       np.arange(len(labels))[i::num_shards])
          for i in range(num_shards)]


@pytest.mark.parametrize("num_shards", [2, 3])
@pytest.mark.parametrize("first_epoch", [True, False])
@pytest.mark.parametrize("options", [
    {},
    {"empty_clusters": "zero"},
    {"kmeans_labels": "last_iteration"},
    {"spherical": True},
    {"centre_init": "target", "soft_selection": False},
])
def test_sharded_state_equals_unsharded(num_shards, first_epoch, options):
  source, target = _domains()
  expected = epoch_state.compute_epoch_state(
      *source, *target, K, first_epoch=first_epoch, **options)
  got = epoch_state.compute_sharded_epoch_state(
      _shards(*source, num_shards), _shards(*target, num_shards), K,
      first_epoch=first_epoch, num_source=len(source[2]),
      num_target=len(target[2]), **options)
  np.testing.assert_array_equal(got.pseudo_labels, expected.pseudo_labels)
  for field in ("centres_f", "centres_h", "source_weights",
                "target_centroids_f", "source_centroids_f"):
    np.testing.assert_allclose(getattr(got, field), getattr(expected, field),
                               rtol=1e-5, atol=1e-5, err_msg=field)
  assert got.pseudo_labels.dtype == tf.int32


@pytest.mark.parametrize("empty, third, labels", [
    ("keep", 50.0, [0, 0, 1, 1]),
    # A zero centre then takes the point at 0 from its neighbour.
    ("zero", 0.0, [2, 0, 1, 1]),
])
def test_sharded_kmeans_treats_an_emptied_cluster_alike_on_every_shard(
    empty, third, labels):
  points = np.array([[0.0], [0.2], [10.0], [10.4]], np.float32)
  # The third centre is nobody's nearest, on either shard.
  initial = np.array([[0.0], [10.0], [50.0]], np.float32)
  got_labels, centres = sharded_kmeans(
      [points[:1], points[1:]], initial, iterations=1, empty_clusters=empty)
  np.testing.assert_allclose(np.asarray(centres)[:, 0], [0.1, 10.2, third],
                             rtol=1e-6)
  np.testing.assert_array_equal(np.concatenate(got_labels), labels)


def test_sharded_centroids_of_a_class_absent_from_one_shard():
  features = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 8.0]], np.float32)
  labels = np.array([0, 1, 1], np.int32)
  got, counts = centroids.sharded_class_centroids(
      [features[:1], features[1:]], [labels[:1], labels[1:]], 3,
      fallback=np.full((3, 2), -1.0, np.float32))
  np.testing.assert_allclose(got, [[1, 2], [4, 6], [-1, -1]])
  np.testing.assert_array_equal(counts, [1, 2, 0])


def test_gather_rows_puts_every_row_in_place_exactly():
  parts = [shards.Shard(None, None, None, np.array([4, 1])),
           shards.Shard(None, None, None, np.array([0, 2, 3]))]
  ints = shards.gather_rows(parts, [np.array([7, -1], np.int32),
                                    np.array([5, 16777215, 2], np.int32)],
                            5, shards.local_sum)
  np.testing.assert_array_equal(ints, [5, -1, 16777215, 2, 7])
  assert ints.dtype == tf.int32
  floats = shards.gather_rows(parts, [np.array([0.1, 0.3], np.float32),
                                      np.array([1e-8, 2.0, 0.7], np.float32)],
                              5, shards.local_sum)
  np.testing.assert_array_equal(
      floats, np.array([1e-8, 0.3, 2.0, 0.7, 0.1], np.float32))


def test_two_logical_cpus_all_reduce_the_state_of_their_shards():
  result = subprocess.run(
      [sys.executable,
       os.path.join(REPO, "tests", "sharded_state_replicas.py")],
      capture_output=True, text=True, timeout=600, cwd=REPO,
      env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"})
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["shard_ids"] == [0, 1]
  assert report["pseudo_labels_equal"]
  assert report["max_diff"] < 1e-5, report


def test_eval_dataset_shard_holds_every_num_shards_th_example():
  domain = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=3)
  transform = transforms.ImageTransform(16)
  indices = [np.concatenate([i for _, _, i in pipeline.eval_dataset(
      domain, 4, transform, shard=(shard_id, 3))]) for shard_id in range(3)]
  for shard_id, shard in enumerate(indices):
    np.testing.assert_array_equal(shard, np.arange(len(domain))[shard_id::3])
  with pytest.raises(ValueError, match=r"got \(3, 3\)"):
    pipeline.eval_dataset(domain, 4, transform, shard=(3, 3))


def test_epoch_sharding_gives_each_replica_its_shard_of_a_domain():
  one = distribute.epoch_sharding(tf.distribute.get_strategy())
  assert one.dataset_shards(10) == [None]
  assert one.sum_over_shards is shards.local_sum
  two = distribute.EpochSharding((1,), 2, shards.local_sum)
  assert two.dataset_shards(10) == [(1, 2)]
  with pytest.raises(ValueError, match="1 examples"):
    two.dataset_shards(1)
