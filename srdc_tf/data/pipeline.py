"""tf.data pipelines: paired source/target training batches and eval passes."""

import math

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def _shard_by_data(dataset):
  """Auto-shards `dataset` by DATA under a multi-worker strategy.

  Every worker builds the same pipeline, a pure function of the seed, and
  keeps its share of each global batch, so that the union over workers of
  step s is the batch of step s of a single-process run: the same examples,
  the same augmentation (seeded by element id), the same `*_index` rows of
  the per-sample tables. FILE sharding does not apply (the records come
  from memory, not from files, and sharding them before the shuffle would
  change the batches with the number of workers) and OFF would have every
  worker train on the whole global batch. The price: every worker reads
  and augments the whole global batch and drops the rest.
  """
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.with_options(options)


def _map_train(domain, transform, seed):
  def load(element_id, record, label, index):
    item = domain.load(record, transform.channels if transform else None)
    image_seed = tf.stack([tf.cast(seed, tf.int64), element_id])
    if domain.cached_views:  # The cached views are the augmentation.
      view = tf.random.stateless_uniform(
          [], image_seed, 0, domain.num_views, dtype=tf.int32)
      return tf.cast(tf.gather(item, view), tf.float32), label, index
    if transform is None or domain.is_features:
      return tf.cast(item, tf.float32), label, index
    return transform.train(item, image_seed), label, index
  return load


EPOCH_STRUCTURES = ("stream", "passes")


def _domain_stream(domain, transform, batch_size, seed, start_step,
                   epoch_structure):
  records = domain.records().shuffle(
      len(domain), seed=seed, reshuffle_each_iteration=True)
  if epoch_structure == "passes":
    # Each pass over the domain keeps its whole batches only (PyTorch's
    # `drop_last=True`), so no batch mixes two passes.
    records = records.batch(batch_size, drop_remainder=True).repeat().unbatch()
  else:
    records = records.repeat()
  # The running element id seeds each image's augmentation, so the stream is
  # a pure function of the seed (reproducible runs, resumable streams).
  # Skipping before the map skips records, not decoded images.
  stream = records.enumerate().skip(start_step * batch_size).map(
      lambda i, rec: _map_train(domain, transform, seed)(i, *rec),
      num_parallel_calls=AUTOTUNE, deterministic=True)
  return stream.batch(batch_size, drop_remainder=True)


def _check_epoch_structure(epoch_structure):
  if epoch_structure not in EPOCH_STRUCTURES:
    raise ValueError(f"epoch_structure must be one of {EPOCH_STRUCTURES}, "
                     f"got {epoch_structure!r}")


def steps_per_epoch(source, target, batch_size, epoch_structure="stream"):
  """SRDC's epoch: max(source batches, target batches).

  Args:
    source: the source `Domain`.
    target: the target `Domain`.
    batch_size: batch size of each side.
    epoch_structure: "stream" counts a last partial batch (the stream
      fills it from the next pass); "passes" counts whole batches only, as
      the released code's `drop_last=True` loaders do.

  Returns:
    The number of steps of one epoch, an int.

  Raises:
    ValueError: with "passes", a domain smaller than one batch.
  """
  _check_epoch_structure(epoch_structure)
  if epoch_structure == "stream":
    return max(math.ceil(len(source) / batch_size),
               math.ceil(len(target) / batch_size))
  for name, domain in (("source", source), ("target", target)):
    if len(domain) < batch_size:
      raise ValueError(
          f"epoch_structure='passes' drops each pass's last partial batch, "
          f"but the {name} domain has {len(domain)} examples, fewer than "
          f"batch_size={batch_size}")
  return max(len(source) // batch_size, len(target) // batch_size)


def train_dataset(source, target, batch_size, transform, seed=0,
                  start_step=0, epoch_structure="stream"):
  """Endless dicts of one source and one target batch each.

  Each side is shuffled and repeated on its own, so the shorter domain
  restarts while the longer one is still going.

  Args:
    source: the labelled source `Domain`.
    target: the target `Domain` (labels unused).
    batch_size: global batch size of each side.
    transform: `ImageTransform`, or None for feature domains.
    seed: shuffling and augmentation seed.
    start_step: the first batch to yield: batch `start_step` of the stream
      that starts at 0, for resuming a run at that step.
    epoch_structure: "stream": each side is one endless shuffled stream cut
      into batches (a batch may span two passes); "passes": each pass over
      a side is shuffled and cut into whole batches, its last partial batch
      dropped (the released code's loaders).

  Returns:
    A `tf.data.Dataset` of dicts with `source_image`, `source_label`,
    `source_index`, `target_image`, `target_index`. Batch s is the same
    whenever it is read, and is sharded by DATA under a multi-worker
    strategy.
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
  if start_step < 0:
    raise ValueError(f"start_step must be >= 0, got {start_step!r}")
  _check_epoch_structure(epoch_structure)
  if epoch_structure == "passes":
    steps_per_epoch(source, target, batch_size, epoch_structure)
  source_stream = _domain_stream(source, transform, batch_size, seed,
                                 start_step, epoch_structure)
  target_stream = _domain_stream(target, transform, batch_size, seed + 1,
                                 start_step, epoch_structure)

  def pair(source_batch, target_batch):
    return {"source_image": source_batch[0],
            "source_label": source_batch[1],
            "source_index": source_batch[2],
            "target_image": target_batch[0],
            "target_index": target_batch[2]}

  return _shard_by_data(tf.data.Dataset.zip(source_stream, target_stream).map(
      pair, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE))


def eval_dataset(domain, batch_size, transform, shard=None):
  """`(image, label, index)` batches of a domain in index order, no
  augmentation.

  Args:
    domain: a `Domain`.
    batch_size: batch size, > 0.
    transform: `ImageTransform`, or None for feature domains.
    shard: None, or `(shard_id, num_shards)`: only the examples whose index
      is `shard_id` modulo `num_shards`, chosen before any is loaded.

  Returns:
    A finite `tf.data.Dataset`. Iterated directly (the per-epoch inference
    pass) it yields the whole domain on every worker; given to `fit` or
    `evaluate` under a multi-worker strategy it is sharded by DATA.
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size!r}")

  def load(record, label, index):
    item = domain.load(record, transform.channels if transform else None)
    if domain.cached_views:
      item = item[0]
    if transform is None or domain.is_features:
      return tf.cast(item, tf.float32), label, index
    return transform.eval(item), label, index

  records = domain.records()
  if shard is not None:
    shard_id, num_shards = shard
    if not 0 <= shard_id < num_shards:
      raise ValueError(f"shard must be (shard_id, num_shards) with 0 <= "
                       f"shard_id < num_shards, got {shard!r}")
    records = records.shard(num_shards, shard_id)
  return _shard_by_data(records.map(
      load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(
          batch_size).prefetch(AUTOTUNE))


def view_dataset(domain, batch_size, transform, view, seed):
  """`(image, label, index)` batches of one view of every image, in index
  order: view 0 is the evaluation view, view v > 0 a training view seeded
  by `(seed, index, v)` alone, so the views of an image are a fixed set.

  Args:
    domain: an image `Domain`.
    batch_size: batch size, > 0.
    transform: the `ImageTransform`.
    view: the view number, >= 0.
    seed: the seed of the training views.

  Returns:
    A finite `tf.data.Dataset`.
  """
  if view == 0:
    return eval_dataset(domain, batch_size, transform)
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size!r}")

  def load(record, label, index):
    item = domain.load(record, transform.channels)
    image_seed = tf.stack([tf.cast(seed, tf.int64),
                           tf.cast(index, tf.int64) * 1000003 + view])
    return transform.train(item, image_seed), label, index

  return domain.records().map(
      load, num_parallel_calls=AUTOTUNE, deterministic=True).batch(
          batch_size).prefetch(AUTOTUNE)
