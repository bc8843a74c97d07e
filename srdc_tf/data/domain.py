"""A domain: images (in memory, encoded or as files), labels, class names."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from srdc_tf.data import npy_rows
from srdc_tf.data import transforms

UNLABELLED = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
  """One domain's examples in a fixed order; the order defines the indices.

  Exactly one of `images`, `paths` and `encoded` is set.

  Attributes:
    name: a display name (e.g. "office31/amazon").
    class_names: the K class names; label k is `class_names[k]`.
    labels: `[N]` int32 labels, `UNLABELLED` where unknown.
    images: `[N, H, W, C]` uint8 images, `[N, D]` float32 features, or
      with `cached_views`, `[N, V, ...]` float32 activations of V views;
      in memory, or `npy_rows.NpyRows` of a file (a feature cache), whose
      rows are read as the pipeline needs them.
    paths: N image file paths (JPEG, PNG, GIF, BMP or WebP), decoded on the
      fly.
    encoded: `[N]` object array of encoded image bytes, decoded on the fly.
    skipped: the bad image files left out when loading (`BadImage`s of
      `srdc_tf.data.validation`), for the run's summary.
    cached_views: `images` holds a frozen network's activations of V views
      of each image (`data.feature_cache`): training draws one view per
      example and step, evaluation reads view 0, the evaluation view.
  """
  name: str
  class_names: tuple
  labels: np.ndarray
  images: np.ndarray = None
  paths: tuple = None
  encoded: np.ndarray = None
  skipped: tuple = ()
  cached_views: bool = False

  def __post_init__(self):
    given = [x for x in (self.images, self.paths, self.encoded)
             if x is not None]
    if len(given) != 1:
      raise ValueError(f"domain {self.name!r}: give exactly one of images, "
                       "paths and encoded")
    if len(self.labels) != len(given[0]):
      raise ValueError(
          f"domain {self.name!r}: {len(self.labels)} labels for "
          f"{len(given[0])} examples")
    if len(given[0]) == 0:
      raise ValueError(f"domain {self.name!r} has no examples")
    labels = np.asarray(self.labels)
    if labels.max() >= len(self.class_names) or labels.min() < UNLABELLED:
      raise ValueError(
          f"domain {self.name!r}: labels span [{labels.min()}, "
          f"{labels.max()}], outside [-1, {len(self.class_names)})")

  def __len__(self):
    return len(self.labels)

  @property
  def num_classes(self):
    return len(self.class_names)

  @property
  def has_labels(self):
    return bool(np.all(np.asarray(self.labels) != UNLABELLED))

  @property
  def is_features(self):
    """Whether the examples are a network's outputs, not images."""
    return self.images is not None and (self.images.ndim == 2
                                        or self.cached_views)

  @property
  def num_views(self):
    """V of a domain of `cached_views`, else 1."""
    return int(self.images.shape[1]) if self.cached_views else 1

  @property
  def is_on_disk(self):
    """Whether `images` stays in a file (`npy_rows.NpyRows`): records are
    then row numbers, each row read when loaded, so a dataset never holds
    the whole array."""
    return isinstance(self.images, npy_rows.NpyRows)

  def _storage(self):
    if self.is_on_disk:
      return np.arange(len(self), dtype=np.int64)
    if self.images is not None:
      return self.images
    if self.paths is not None:
      # As the file system's bytes: a name that is not valid UTF-8 (held
      # by Python with surrogate escapes) reaches the file as it is named.
      return np.asarray([os.fsencode(path) for path in self.paths],
                        dtype=object)
    return self.encoded.astype(bytes)

  def restricted_to(self, class_names):
    """The examples of `class_names` only, relabelled in that order."""
    new_id = {name: k for k, name in enumerate(class_names)}
    old_to_new = np.array([new_id.get(n, -2) for n in self.class_names] + [-1])
    labels = old_to_new[np.asarray(self.labels)]  # -1 indexes the last: -1.
    keep = labels != -2
    return self._subset(keep, tuple(class_names), labels)

  def select(self, keep):
    """The examples where the boolean mask `keep` is true, in order (the
    indices are renumbered from 0)."""
    return self._subset(np.asarray(keep, bool), self.class_names,
                        np.asarray(self.labels))

  def _subset(self, keep, class_names, labels):
    storage = {"images": self.images, "paths": self.paths,
               "encoded": self.encoded}
    kept = {key: (None if value is None else
                  (tuple(np.asarray(value)[keep]) if key == "paths"
                   else np.asarray(value)[keep]))
            for key, value in storage.items()}
    return Domain(name=self.name, class_names=class_names,
                  labels=labels[keep].astype(np.int32), skipped=self.skipped,
                  cached_views=self.cached_views, **kept)

  def records(self):
    """`(record, label, index)` in index order; `load` turns a record into
    an image. Records are light (a path, encoded bytes, a row of an
    in-memory array, or a row number of one on disk) so shuffling holds
    no decoded images."""
    labels = np.asarray(self.labels, np.int32)
    indices = np.arange(len(self), dtype=np.int32)
    return tf.data.Dataset.from_tensor_slices(
        (self._storage(), labels, indices))

  def load(self, record, channels):
    """Decodes a record into a `[H, W, channels]` uint8 image (features and
    in-memory images pass through, with channels converted)."""
    if self.images is None:
      contents = (tf.io.read_file(record) if self.paths is not None
                  else record)
      return transforms.decode_image(contents, channels)
    if self.is_on_disk:
      row = tf.numpy_function(self.images.row, [record],
                              tf.as_dtype(self.images.dtype), stateful=False)
      row.set_shape(self.images.shape[1:])
      record = row
    if self.is_features:
      return record
    have = self.images.shape[-1]
    if have == channels:
      return record
    if have == 1 and channels == 3:
      return tf.image.grayscale_to_rgb(record)
    if have == 3 and channels == 1:
      return tf.cast(tf.round(tf.image.rgb_to_grayscale(
          tf.cast(record, tf.float32))), tf.uint8)
    raise ValueError(
        f"domain {self.name!r}: cannot convert {have} channels to {channels}")
