"""The samples of a domain split into shards, and sums over all of them.

A sharded per-epoch update gives each replica (or worker) a shard of the
source and target samples. Everything the clustering needs across shards
is a sum: per-cluster feature sums and counts, and the per-sample tables,
which are gathered by adding each shard's rows scattered into zeros (the
shards are disjoint, so the sum is exact). A `sum_over_shards` function
takes this process' per-shard values and returns their sum over every
shard of every process; `local_sum` is the one of a single process that
holds all shards (`distribute.epoch_sharding` builds the all-reducing
one).
"""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Shard:
  """The inference-mode outputs of one shard of a domain's samples.

  Attributes:
    f: `[n, Df]` features `f` of the shard's samples.
    h: `[n, Dh]` features `h`.
    labels: `[n]` int labels: the true labels of source samples, the
      classifier's predictions of target samples.
    indices: `[n]` int positions of the shard's samples in the domain.
  """
  f: object
  h: object
  labels: object
  indices: object

  def __len__(self):
    return int(np.shape(self.indices)[0])


def local_sum(per_shard):
  """The sum over shards when every shard is in this process.

  Args:
    per_shard: a list of tensors of one shape, one per shard.

  Returns:
    Their sum (the tensor itself for one shard).
  """
  if len(per_shard) == 1:
    return tf.convert_to_tensor(per_shard[0])
  return tf.add_n([tf.convert_to_tensor(value) for value in per_shard])


def whole(f, h, labels):
  """A domain as its one shard."""
  return Shard(f=f, h=h, labels=labels,
               indices=np.arange(int(np.shape(labels)[0]), dtype=np.int32))


def sum_counts(per_shard_counts, sum_over_shards):
  """Sums int32 counts over shards, exactly: through float32, which every
  all-reduce implementation supports and which holds integers below 2^24
  exactly."""
  total = sum_over_shards([tf.cast(counts, tf.float32)
                           for counts in per_shard_counts])
  return tf.cast(tf.round(total), tf.int32)


def sum_statistics(per_shard, sum_over_shards):
  """Sums per-cluster `(sums, counts)` over shards in one reduction.

  Args:
    per_shard: `[([K, D] float32 sums, [K] int32 counts)]`, one per shard.
    sum_over_shards: see the module docstring.

  Returns:
    `(sums, counts)` over every shard; counts exact (see `sum_counts`).
  """
  if sum_over_shards is local_sum and len(per_shard) == 1:
    return per_shard[0]
  # One all-reduce instead of two: the counts ride as a last column.
  total = sum_over_shards([
      tf.concat([sums, tf.cast(counts, tf.float32)[:, tf.newaxis]], axis=1)
      for sums, counts in per_shard])
  return total[:, :-1], tf.cast(tf.round(total[:, -1]), tf.int32)


def gather_rows(shards, per_shard_rows, num_rows, sum_over_shards):
  """The `[num_rows, ...]` table whose rows the shards hold between them.

  Args:
    shards: this process' `Shard`s.
    per_shard_rows: one `[len(shard), ...]` tensor per shard, in its order.
    num_rows: rows of the whole table (the domain's size).
    sum_over_shards: see the module docstring.

  Returns:
    The table, in domain order, on every process; of the rows' dtype
    (int32 rows are gathered exactly, through `sum_counts`).
  """
  if (len(shards) == 1 and sum_over_shards is local_sum
      and len(shards[0]) == num_rows):
    rows = tf.convert_to_tensor(per_shard_rows[0])
    order = np.asarray(shards[0].indices)
    if np.array_equal(order, np.arange(num_rows)):
      return rows
  integer = tf.convert_to_tensor(per_shard_rows[0]).dtype.is_integer
  scattered = []
  for shard, rows in zip(shards, per_shard_rows):
    rows = tf.convert_to_tensor(rows)
    shape = tf.concat([[num_rows], tf.shape(rows)[1:]], axis=0)
    scattered.append(tf.scatter_nd(
        tf.cast(shard.indices, tf.int32)[:, tf.newaxis],
        tf.cast(rows, tf.float32), shape))
  if integer:
    return sum_counts(scattered, sum_over_shards)
  return sum_over_shards(scattered)
