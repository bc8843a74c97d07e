"""A frozen network's outputs, computed once per image and reused.

With a frozen backbone, every epoch would push each image through the same
function again; caching `f` turns an epoch into a pass over the heads only.
Features come from the evaluation view of each image (no augmentation).
With a backbone cut in two (`models.cut`), the frozen part's activations at
the cut are cached for a fixed set of views of each image (the evaluation
view and augmented training views), and training runs the part above it.
"""

import dataclasses
import hashlib
import itertools
import json
import os

from absl import logging
import numpy as np
import tensorflow as tf

from srdc_tf import cache_records
from srdc_tf import console
from srdc_tf import write_guard
from srdc_tf.data import digests
from srdc_tf.data import domain as domain_lib
from srdc_tf.data import npy_rows
from srdc_tf.data import pipeline


def content_fingerprint(domain):
  """A digest of what a domain's examples are, in their order.

  Every example counts by its bytes alone (an image file's, an encoded
  image's, or the pixels held in memory): a cached row is a function of
  them and of nothing else the domain holds. So an image edited under the
  same name changes the digest, while a copy of the data elsewhere, a
  re-provisioned or touched folder (new modification times), or renamed
  files in the same order do not. Reading the files costs little against
  what the cache saves (Office-31's 2817 Amazon images, 24 MB: 0.2 s).

  Args:
    domain: a `Domain`.

  Returns:
    A hex string.
  """
  digest = hashlib.sha1()
  if domain.paths is not None:
    for path in domain.paths:
      digest.update(f"{digests.file_digest(path)}\n".encode())
  elif domain.encoded is not None:
    for item in domain.encoded:
      digest.update(len(item).to_bytes(8, "little"))
      digest.update(bytes(item))
  else:
    images = np.ascontiguousarray(domain.images)
    digest.update(repr((images.shape, images.dtype.str)).encode())
    digest.update(images.data)
  return digest.hexdigest()


# The seed of the cached training views: fixed, so that runs of every seed
# share one cache (a run's seed still draws which view each step sees).
VIEW_SEED = 0


def transform_description(transform):
  """The transform as cache keys see it: its class and every field that
  has no default or differs from it, numbers as floats.

  Fields at their defaults are left out so that a field added to the
  transform later, off by default, keeps every existing key (its cached
  features are the same); `10` and `10.0` describe the same transform.

  Args:
    transform: a dataclass instance (`transforms.ImageTransform`).

  Returns:
    A string such as `"ImageTransform(image_size=224.0, resize_size=256.0,
    random_flip=True)"`.
  """
  described = []
  for field in dataclasses.fields(transform):
    value = getattr(transform, field.name)
    if field.default is not dataclasses.MISSING and value == field.default:
      continue
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      value = float(value)
    described.append(f"{field.name}={value!r}")
  return f"{type(transform).__name__}({', '.join(described)})"


def cache_description(domain, backbone_id, transform, views=None):
  """What the features of `domain` under a backbone and transform are made
  from: the domain's name, its size and a digest of its content
  (`content_fingerprint`), the backbone and its weights (`backbone_id`),
  the transform (`transform_description`) and the views (None: the
  evaluation view alone, as `[N, D]` rows). Their cache's key is a digest
  of it, and its record (`cache_records`) holds it."""
  return {"domain": domain.name, "examples": len(domain),
          "content": content_fingerprint(domain), "backbone": backbone_id,
          "transform": transform_description(transform),
          "views": None if views is None else int(views),
          "view_seed": None if views is None else VIEW_SEED}


def _key(description):
  described = [description[name] for name in
               ("domain", "examples", "content", "backbone", "transform")]
  if description["views"] is not None:
    described += [description["views"], description["view_seed"]]
  digest = hashlib.sha1(json.dumps(described).encode()).hexdigest()[:16]
  safe = "".join(c if c.isalnum() else "_" for c in description["domain"])
  return f"{safe}-{digest}"


def cache_key(domain, backbone_id, transform, views=None):
  """A name for the features of `domain` under a backbone and transform: a
  digest of `cache_description`, after the domain's name."""
  return _key(cache_description(domain, backbone_id, transform, views))


# A cache is read whole into memory when what that costs fits in this
# share of the memory available. Every tf.data dataset built on an
# in-memory array holds its own copy, and a run builds several: a training
# stream and an evaluation pass peaked at 6.1 times the cache
# (`benchmarks/cache_reading.py`), hence `_COPIES_HELD`. A larger cache
# (fine-tuning's of VisDA-2017: about 19 GB) is read row by row as the
# pipeline asks for it: memory stays flat, but the stream feeds about 3x
# fewer rows per second, which a frozen-feature run's heads would feel.
IN_MEMORY_SHARE = 0.5
_COPIES_HELD = 6


def _available_memory_bytes():
  try:
    with open("/proc/meminfo") as meminfo:
      for line in meminfo:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _open(path):
  """The cache file at `path`: an array in memory, or `npy_rows.NpyRows`
  when it is large against the memory available (`IN_MEMORY_SHARE`)."""
  rows = npy_rows.NpyRows(path)
  available = _available_memory_bytes()
  if _COPIES_HELD * rows.nbytes <= IN_MEMORY_SHARE * available:
    return np.asarray(rows)
  logging.info("The feature cache %s (%.0f MB) is read row by row as it is "
               "used: %.0f MB of memory available.", path,
               rows.nbytes / 2**20, available / 2**20)
  return rows


def _read(path, domain):
  """The cached array at `path`, or None (with a warning naming the file)
  when it cannot be read: a cache is derived data, computed again then."""
  console.banner(f"Feature cache: {domain.name} ({len(domain)} images), "
                 f"read from {path}")
  try:
    return _open(path)
  except (OSError, ValueError, EOFError) as error:
    logging.warning("The feature cache file %s cannot be read (%s: %s); "
                    "computing it again.", path, type(error).__name__, error)
    return None


def _what(domain):
  return f"the feature cache of {domain.name!r}"


def _expected_bytes(network, rows):
  """What `rows` float32 outputs of `network` take in a cache file, or 0
  when its output shape is not known before it runs."""
  shape = getattr(network, "output_shape", None)
  if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
    return 0
  return write_guard.estimate_bytes(
      [tf.TensorSpec((rows, *shape[1:]), tf.float32)])


def _view_batches(domain, batch_size, transform, views):
  """Aligned image batches of every view, in index order: tuples of
  `views or 1` batches, view 0 the evaluation view."""
  return tf.data.Dataset.zip(tuple(
      pipeline.view_dataset(domain, batch_size, transform, view,
                            VIEW_SEED).map(lambda images, label, index: images)
      for view in range(views or 1)))


def _rows(network, batches, views, progress):
  """The network's float32 outputs, one block of rows per batch: `[B, ...]`
  without views, `[B, V, ...]` with them."""
  for images in batches:
    outputs = [np.asarray(network(view, training=False), np.float32)
               for view in images]
    progress.update(len(outputs) * len(outputs[0]))
    yield np.stack(outputs, axis=1) if views else outputs[0]


def _write_rows(path, rows, count):
  """Writes blocks of rows to `path` as one `.npy` array of `count` rows,
  block after block: the whole array is never in memory (a cache can be
  larger than it), and a full disk is an `OSError` of the write, not a
  crash of a memory-mapped page."""
  rows = iter(rows)
  first = next(rows)
  header = {"descr": np.lib.format.dtype_to_descr(first.dtype),
            "fortran_order": False, "shape": (count, *first.shape[1:])}
  written = 0
  with open(path, "wb") as out:
    np.lib.format.write_array_header_2_0(out, header)
    for block in itertools.chain([first], rows):
      out.write(np.ascontiguousarray(block).tobytes())
      written += len(block)
  if written != count:
    raise ValueError(f"wrote {written} rows to {path!r}, expected {count}")


def backbone_features(domain, backbone, transform, batch_size=64,
                      cache_dir=None, backbone_id=None, views=None):
  """The domain with every image replaced by a frozen network's output.

  Args:
    domain: an image `Domain`.
    backbone: a frozen `keras.Model` from images to `[batch, ...]` outputs.
    transform: the `ImageTransform` whose views are embedded.
    batch_size: inference batch size.
    cache_dir: where features are stored and looked up (None: no cache).
    backbone_id: a string naming the backbone and its weights, part of the
      cache key; required with `cache_dir`.
    views: None: the evaluation view alone; V >= 1: the evaluation view
      and V - 1 training views of every image
      (`pipeline.view_dataset`, seeded by `VIEW_SEED`).

  Returns:
    A `Domain` of the same labels and order holding `[N, D]` float32
    features, or with `views`, `[N, V, ...]` float32 outputs and
    `cached_views` set. A cache too large for the memory available stays
    in its file (`npy_rows.NpyRows`), read as it is used.
  """
  if views is not None and views < 1:
    raise ValueError(f"views must be >= 1, got {views!r}")
  path = None
  if cache_dir:
    if not backbone_id:
      raise ValueError("backbone_id is required with cache_dir")
    description = cache_description(domain, backbone_id, transform, views)
    path = os.path.join(cache_dir, _key(description) + ".npy")
  features = _read(path, domain) if path and os.path.isfile(path) else None
  if features is not None:
    cache_records.mark_used(path, description)
  if features is None:
    if path:
      # Before the frozen network runs (Amazon's 4 views: 14 minutes
      # here), not after.
      write_guard.check_room(
          cache_dir, _expected_bytes(backbone, len(domain) * (views or 1)),
          _what(domain), "no cache file was changed")
    console.banner(f"Feature cache: {domain.name} ({len(domain)} images"
                   + (f" x {views} views" if views else "")
                   + ") through the frozen network"
                   + (f" into {path}" if path else ""))
    progress = console.Progress(f"embedding {domain.name}",
                                total=(views or 1) * len(domain),
                                transient=True)
    rows = _rows(backbone, _view_batches(domain, batch_size, transform,
                                         views), views, progress)
    if path:
      staging = cache_records.staging_path(path)
      with write_guard.guarded(_what(domain), cache_dir,
                               "no cache file was changed", cleanup=staging):
        os.makedirs(cache_dir, exist_ok=True)
        _write_rows(staging, rows, len(domain))
        os.replace(staging, path)  # Never a half-written cache file.
      cache_records.write_record(path, description)
      features = _open(path)
    else:
      features = np.concatenate(list(rows))
    progress.close()
  if len(features) != len(domain):
    raise ValueError(f"feature cache {path!r} holds {len(features)} rows for "
                     f"{len(domain)} examples of {domain.name!r}")
  return domain_lib.Domain(name=domain.name, class_names=domain.class_names,
                           labels=domain.labels, images=features,
                           skipped=domain.skipped,
                           cached_views=views is not None)
