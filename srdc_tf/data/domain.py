"""A domain: images (in memory or as files), labels and class names."""

import dataclasses

import numpy as np
import tensorflow as tf

UNLABELLED = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
  """One domain's examples in a fixed order; the order defines the indices.

  Exactly one of `images` and `paths` is set.

  Attributes:
    name: a display name (e.g. "office31/amazon").
    class_names: the K class names; label k is `class_names[k]`.
    labels: `[N]` int32 labels, `UNLABELLED` where unknown.
    images: `[N, H, W, C]` uint8 images, or `[N, D]` float32 features.
    paths: N image file paths (JPEG, PNG, BMP or GIF), decoded on the fly.
  """
  name: str
  class_names: tuple
  labels: np.ndarray
  images: np.ndarray = None
  paths: tuple = None

  def __post_init__(self):
    if (self.images is None) == (self.paths is None):
      raise ValueError(
          f"domain {self.name!r}: give exactly one of images and paths")
    count = len(self.images) if self.paths is None else len(self.paths)
    if len(self.labels) != count:
      raise ValueError(
          f"domain {self.name!r}: {len(self.labels)} labels for {count} "
          "examples")
    if count == 0:
      raise ValueError(f"domain {self.name!r} has no examples")
    labels = np.asarray(self.labels)
    if labels.size and labels.max() >= len(self.class_names):
      raise ValueError(
          f"domain {self.name!r}: label {labels.max()} out of range for "
          f"{len(self.class_names)} classes")

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
    return self.images is not None and self.images.ndim == 2

  def records(self):
    """`(record, label, index)` in index order; `load` turns a record into
    an image. Records are light (a path, or a row of an in-memory array) so
    shuffling holds no decoded images."""
    labels = np.asarray(self.labels, np.int32)
    indices = np.arange(len(self), dtype=np.int32)
    records = (np.asarray(self.paths) if self.images is None
               else self.images)
    return tf.data.Dataset.from_tensor_slices((records, labels, indices))

  def load(self, record, channels):
    """Decodes a record into a `[H, W, channels]` uint8 image (features and
    in-memory images pass through, with channels converted)."""
    if self.images is None:
      image = tf.io.decode_image(tf.io.read_file(record), channels=channels,
                                 expand_animations=False)
      image.set_shape([None, None, channels])
      return image
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
