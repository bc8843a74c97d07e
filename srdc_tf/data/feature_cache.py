"""A frozen backbone's features, computed once per image and reused.

With a frozen backbone, every epoch would push each image through the same
function again; caching `f` turns an epoch into a pass over the heads only.
Features come from the evaluation view of each image (no augmentation).
"""

import hashlib
import json
import os

import numpy as np

from srdc_tf import console
from srdc_tf.data import domain as domain_lib
from srdc_tf.data import pipeline


def content_fingerprint(domain):
  """A digest of what a domain's examples are, in their order.

  Image files count by path, size and modification time (an image edited
  or replaced under the same name changes it; reading every file would
  cost as much as the cache saves); images held in memory or as encoded
  bytes count by their bytes.

  Args:
    domain: a `Domain`.

  Returns:
    A hex string.
  """
  digest = hashlib.sha1()
  if domain.paths is not None:
    for path in domain.paths:
      status = os.stat(path)
      digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\n"
                    .encode("utf-8", "surrogateescape"))
  elif domain.encoded is not None:
    for item in domain.encoded:
      digest.update(len(item).to_bytes(8, "little"))
      digest.update(bytes(item))
  else:
    images = np.ascontiguousarray(domain.images)
    digest.update(repr((images.shape, images.dtype.str)).encode())
    digest.update(images.data)
  return digest.hexdigest()


def cache_key(domain, backbone_id, transform):
  """A name for the features of `domain` under a backbone and transform:
  the domain's name, a digest of its content (`content_fingerprint`), the
  backbone and its weights (`backbone_id`) and the transform."""
  description = json.dumps([domain.name, len(domain),
                            content_fingerprint(domain), backbone_id,
                            repr(transform)])
  digest = hashlib.sha1(description.encode()).hexdigest()[:16]
  safe = "".join(c if c.isalnum() else "_" for c in domain.name)
  return f"{safe}-{digest}"


def backbone_features(domain, backbone, transform, batch_size=64,
                      cache_dir=None, backbone_id=None):
  """The domain with every image replaced by its backbone feature.

  Args:
    domain: an image `Domain`.
    backbone: a `keras.Model` from images to `[batch, D]` features.
    transform: the `ImageTransform` whose evaluation view is embedded.
    batch_size: inference batch size.
    cache_dir: where features are stored and looked up (None: no cache).
    backbone_id: a string naming the backbone and its weights, part of the
      cache key; required with `cache_dir`.

  Returns:
    A `Domain` of `[N, D]` float32 features, same labels and order.
  """
  path = None
  if cache_dir:
    if not backbone_id:
      raise ValueError("backbone_id is required with cache_dir")
    path = os.path.join(cache_dir,
                        cache_key(domain, backbone_id, transform) + ".npy")
  if path and os.path.isfile(path):
    console.banner(f"Feature cache: {domain.name} ({len(domain)} images), "
                   f"read from {path}")
    features = np.load(path)
  else:
    console.banner(f"Feature cache: {domain.name} ({len(domain)} images) "
                   "through the frozen backbone"
                   + (f" into {path}" if path else ""))
    progress = console.Progress(f"embedding {domain.name}", total=len(domain),
                                transient=True)
    parts = []
    for images, _, _ in pipeline.eval_dataset(domain, batch_size, transform):
      parts.append(np.asarray(backbone(images, training=False), np.float32))
      progress.update(len(parts[-1]))
    progress.close()
    features = np.concatenate(parts)
    if path:
      os.makedirs(cache_dir, exist_ok=True)
      staging = path + f".{os.getpid()}.tmp.npy"
      np.save(staging, features)
      os.replace(staging, path)  # Never a half-written cache file.
  if len(features) != len(domain):
    raise ValueError(f"feature cache {path!r} holds {len(features)} rows for "
                     f"{len(domain)} examples of {domain.name!r}")
  return domain_lib.Domain(name=domain.name, class_names=domain.class_names,
                           labels=domain.labels, images=features)
