"""A frozen backbone's features, computed once per image and reused.

With a frozen backbone, every epoch would push each image through the same
function again; caching `f` turns an epoch into a pass over the heads only.
Features come from the evaluation view of each image (no augmentation).
"""

import hashlib
import json
import os

import numpy as np

from srdc_tf.data import domain as domain_lib
from srdc_tf.data import pipeline


def cache_key(domain, backbone_id, transform):
  """A name for the features of `domain` under a backbone and transform."""
  first = str(domain.paths[0]) if domain.paths is not None else ""
  description = json.dumps([domain.name, len(domain), first, backbone_id,
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
    features = np.load(path)
  else:
    parts = [np.asarray(backbone(images, training=False), np.float32)
             for images, _, _ in pipeline.eval_dataset(domain, batch_size,
                                                       transform)]
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
