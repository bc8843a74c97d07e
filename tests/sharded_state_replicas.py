"""Computes the per-epoch state sharded over a MirroredStrategy of 2
logical CPUs (each replica one strided half of each domain, statistics
summed by the strategy) and unsharded, and prints how they differ as JSON.
Run as a script: the CPU must be split before TensorFlow starts."""

import json

import numpy as np

from srdc_tf import distribute
from srdc_tf.clustering import epoch_state

import test_shards


def main():
  strategy = distribute.create_strategy("mirrored", num_cpu_devices=2)
  sharding = distribute.epoch_sharding(strategy)
  source, target = test_shards._domains(seed=3)  # pylint: disable=protected-access
  expected = epoch_state.compute_epoch_state(*source, *target, test_shards.K,
                                             first_epoch=False)
  pick = lambda parts: [parts[i] for i in sharding.shard_ids]  # pylint: disable=g-long-lambda
  got = epoch_state.compute_sharded_epoch_state(
      pick(test_shards._shards(*source, sharding.num_shards)),  # pylint: disable=protected-access
      pick(test_shards._shards(*target, sharding.num_shards)),  # pylint: disable=protected-access
      test_shards.K, first_epoch=False, num_source=len(source[2]),
      num_target=len(target[2]), sum_over_shards=sharding.sum_over_shards)
  diffs = [float(np.max(np.abs(np.asarray(getattr(got, field))
                               - np.asarray(getattr(expected, field)))))
           for field in ("centres_f", "centres_h", "source_weights")]
  print(json.dumps({
      "shard_ids": list(sharding.shard_ids),
      "pseudo_labels_equal": bool(np.array_equal(got.pseudo_labels,
                                                 expected.pseudo_labels)),
      "max_diff": max(diffs)}))


if __name__ == "__main__":
  main()
