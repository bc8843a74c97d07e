"""The frozen-backbone feature cache: same features as the backbone, read
back from disk the second time."""

import os

import numpy as np

from srdc_tf.data import feature_cache
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.models import build_backbone


def test_features_match_the_backbone_and_are_cached(tmp_path):
  domain = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=3)
  transform = transforms.ImageTransform(32)
  backbone = build_backbone("lenet", (32, 32, 3), trainable=False)
  cached = feature_cache.backbone_features(domain, backbone, transform, 7,
                                           str(tmp_path), "lenet:random")
  images = np.concatenate([x for x, _, _ in pipeline.eval_dataset(
      domain, 64, transform)])
  np.testing.assert_allclose(cached.images, backbone(images), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(cached.labels, domain.labels)
  assert cached.is_features
  files = os.listdir(tmp_path)
  assert len(files) == 1 and files[0].endswith(".npy")
  # A second call reads the file: a different backbone is not consulted.
  other = build_backbone("lenet", (32, 32, 3), trainable=False)
  again = feature_cache.backbone_features(domain, other, transform, 7,
                                          str(tmp_path), "lenet:random")
  np.testing.assert_array_equal(again.images, cached.images)


def test_key_depends_on_backbone_and_transform():
  domain = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=1)
  small, large = transforms.ImageTransform(32), transforms.ImageTransform(64)
  keys = {feature_cache.cache_key(domain, "a", small),
          feature_cache.cache_key(domain, "b", small),
          feature_cache.cache_key(domain, "a", large)}
  assert len(keys) == 3
