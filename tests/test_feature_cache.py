"""The frozen-backbone feature cache: same features as the backbone, read
back from disk the second time."""

import errno
import io
import os
import shutil

import numpy as np
import pytest

from srdc_tf import run_data
from srdc_tf import run_settings
from srdc_tf import runner
from srdc_tf import write_guard
from srdc_tf.data import domain as domain_lib
from srdc_tf.data import feature_cache
from srdc_tf.data import npy_rows
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
  # The cache file and its record (`cache_records`).
  files = sorted(os.listdir(tmp_path))
  assert [os.path.splitext(name)[1] for name in files] == [".json", ".npy"]
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


def test_transform_description_names_the_fields_set():
  assert (feature_cache.transform_description(transforms.ImageTransform(16))
          == "ImageTransform(image_size=16.0)")
  # A field off by default (a later addition, say) leaves the key alone;
  # an integer and a float of the same value describe the same transform.
  assert (feature_cache.transform_description(
      transforms.ImageTransform(16, random_scale=0.0, random_rotation=10))
          == feature_cache.transform_description(
              transforms.ImageTransform(16, random_rotation=10.0))
          == "ImageTransform(image_size=16.0, random_rotation=10.0)")


@pytest.mark.parametrize("field, value", [
    ("channels", 1), ("resize_size", 20), ("random_flip", True),
    ("random_translate", 2), ("random_rotation", 5.0), ("random_scale", 0.2),
    ("random_shear", 10.0), ("fill", "reflect"),
    ("colour_augmentation", "channel_levels")])
def test_every_transform_field_set_changes_the_key(field, value):
  domain = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=1)
  plain = transforms.ImageTransform(16)
  changed = transforms.ImageTransform(16, **{field: value})
  assert (feature_cache.cache_key(domain, "a", changed, views=4)
          != feature_cache.cache_key(domain, "a", plain, views=4))


def _image_files(root, pixels):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for name, value in pixels.items():
    os.makedirs(root / name.split("/")[0], exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(root / name)
  return sources.load_domain(str(root))


def test_an_edited_image_with_the_same_name_changes_the_key(tmp_path):
  names = {"a/0.png": 10, "a/1.png": 20, "b/0.png": 30, "b/1.png": 40}
  domain = _image_files(tmp_path, names)
  transform = transforms.ImageTransform(16)
  key = feature_cache.cache_key(domain, "lenet:random", transform)
  assert feature_cache.cache_key(
      sources.load_domain(str(tmp_path)), "lenet:random", transform) == key
  # The same names, count, size and modification time; other pixels.
  stat = os.stat(tmp_path / "b/1.png")
  _image_files(tmp_path, {"b/1.png": 99})
  assert os.stat(tmp_path / "b/1.png").st_size == stat.st_size
  os.utime(tmp_path / "b/1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
  assert feature_cache.cache_key(
      sources.load_domain(str(tmp_path)), "lenet:random", transform) != key


def test_the_same_images_elsewhere_or_touched_keep_the_key(tmp_path):
  # A copy of the data on another machine or path, or a folder whose
  # files were re-provisioned (new modification times): the same features.
  names = {"a/0.png": 10, "a/1.png": 20, "b/0.png": 30}
  transform = transforms.ImageTransform(16)
  _image_files(tmp_path / "here" / "images", names)
  _image_files(tmp_path / "there" / "images", names)
  for path in (tmp_path / "there").rglob("*.png"):
    os.utime(path, ns=(1, 10**18))
  # The same spec under each data root, as a flagfile names it.
  here, there = (sources.load_domain("images", data_root=str(tmp_path / root))
                 for root in ("here", "there"))
  assert here.paths[0] != there.paths[0]
  assert (feature_cache.cache_key(here, "lenet:random", transform)
          == feature_cache.cache_key(there, "lenet:random", transform))


def test_in_memory_images_count_by_their_bytes():
  domain = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=2)
  transform = transforms.ImageTransform(32)
  key = feature_cache.cache_key(domain, "lenet:random", transform)
  edited = domain.images.copy()
  edited[3, 0, 0, 0] ^= 1
  changed = type(domain)(name=domain.name, class_names=domain.class_names,
                         labels=domain.labels, images=edited)
  assert feature_cache.cache_key(changed, "lenet:random", transform) != key


def test_a_weights_file_counts_by_its_bytes(tmp_path):
  weights = tmp_path / "w.weights.h5"
  weights.write_bytes(b"first weights")
  settings = run_settings.RunSettings(
      source="s", target="t", model_dir="m", backbone="mobilenet_v2",
      weights=str(weights))
  first = settings.backbone_id
  copy = tmp_path / "copy.weights.h5"
  copy.write_bytes(b"first weights")
  os.utime(copy, ns=(1, 10**18))
  assert settings.replace(weights=str(copy)).backbone_id == first
  weights.write_bytes(b"other weights")  # Same size, same name.
  assert settings.backbone_id != first


def _cache_args(tmp_path):
  domain = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=3)
  backbone = build_backbone("lenet", (32, 32, 3), trainable=False)
  return (domain, backbone, transforms.ImageTransform(32), 7,
          str(tmp_path / "cache"), "lenet:random")


def test_a_cache_that_cannot_fit_is_refused_before_the_network_runs(
    tmp_path, monkeypatch):
  def never(*args):
    raise AssertionError("the frozen network ran")

  monkeypatch.setattr(feature_cache, "_rows", never)
  monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(  # pylint: disable=protected-access
      10**9, 10**9 - 2**20, 2**20))
  with pytest.raises(write_guard.WriteFailedError,
                     match=r"cannot write the feature cache of "
                     r"'synthetic/target' to .*: the disk is full: 1.0 MB "
                     r"free .*; nothing was written, no cache file was "
                     "changed"):
    feature_cache.backbone_features(*_cache_args(tmp_path))


def test_a_failed_cache_write_leaves_no_file(tmp_path, monkeypatch):
  class FillsTheDisk(io.FileIO):
    """A file whose disk fills after its first 1000 bytes."""

    def write(self, data):
      if self.tell() + len(data) > 1000:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      return super().write(data)

  monkeypatch.setattr(feature_cache, "open", FillsTheDisk, raising=False)
  with pytest.raises(write_guard.WriteFailedError,
                     match="cannot write the feature cache of "
                     "'synthetic/target'"):
    feature_cache.backbone_features(*_cache_args(tmp_path))
  assert os.listdir(tmp_path / "cache") == []


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_cache_build_stopped_midway_leaves_no_file(tmp_path, monkeypatch,
                                                     stop):
  # The frozen network runs while the file is written (Amazon's 4 views:
  # 14 minutes here): Ctrl-C or an error then leaves no staging file.
  real_rows = feature_cache._rows  # pylint: disable=protected-access

  def stops_after_one_block(*args):
    rows = real_rows(*args)
    yield next(rows)
    raise stop("stopped")

  monkeypatch.setattr(feature_cache, "_rows", stops_after_one_block)
  with pytest.raises(stop):
    feature_cache.backbone_features(*_cache_args(tmp_path))
  assert os.listdir(tmp_path / "cache") == []


@pytest.mark.parametrize("damage", ["truncated", "not_numpy"])
def test_a_damaged_cache_file_is_computed_again(tmp_path, damage):
  args = _cache_args(tmp_path)
  first = np.asarray(feature_cache.backbone_features(*args).images)
  [path] = (tmp_path / "cache").glob("*.npy")
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2] if damage == "truncated"
                   else b"not a cache")
  again = feature_cache.backbone_features(*args)
  np.testing.assert_array_equal(again.images, first)
  assert path.read_bytes() == data  # Written anew, whole.


def test_a_small_cache_is_read_into_memory(tmp_path):
  cached = feature_cache.backbone_features(*_cache_args(tmp_path), views=2)
  assert isinstance(cached.images, np.ndarray) and not cached.is_on_disk


def test_a_large_cache_is_read_from_the_file_as_it_is_used(tmp_path,
                                                           monkeypatch):
  # One larger than its share of the memory available stays on disk.
  monkeypatch.setattr(feature_cache, "IN_MEMORY_SHARE", 0)
  args = _cache_args(tmp_path)
  domain, backbone, transform = args[:3]
  written = feature_cache.backbone_features(*args, views=3)
  read = feature_cache.backbone_features(*args, views=3)
  in_memory = feature_cache.backbone_features(*args[:4], views=3)
  for cached in (written, read):
    assert isinstance(cached.images, npy_rows.NpyRows) and cached.is_on_disk
    np.testing.assert_array_equal(cached.images, in_memory.images)
  assert not in_memory.is_on_disk
  # View 0 is the evaluation view, as the backbone sees it.
  images = np.concatenate([x for x, _, _ in pipeline.eval_dataset(
      domain, 64, transform)])
  np.testing.assert_allclose(read.images[:, 0], backbone(images), rtol=1e-5,
                             atol=1e-6)


def _batches(dataset):
  return [{key: value.numpy() for key, value in batch.items()}
          for batch in dataset]


def test_a_domain_on_disk_feeds_the_pipeline_as_an_in_memory_one(
    tmp_path, monkeypatch):
  monkeypatch.setattr(feature_cache, "IN_MEMORY_SHARE", 0)
  args = _cache_args(tmp_path)
  on_disk = feature_cache.backbone_features(*args, views=3)
  in_memory = domain_lib.Domain(
      name=on_disk.name, class_names=on_disk.class_names,
      labels=on_disk.labels, images=np.array(on_disk.images), cached_views=True)
  train = [_batches(pipeline.train_dataset(domain, domain, 8, None,
                                           seed=3).take(5))
           for domain in (on_disk, in_memory)]
  for got, want in zip(*train):
    assert got.keys() == want.keys()
    for key in got:
      np.testing.assert_array_equal(got[key], want[key])
  evaluated = [[x.numpy() for x, _, _ in pipeline.eval_dataset(d, 8, None)]
               for d in (on_disk, in_memory)]
  np.testing.assert_array_equal(np.concatenate(evaluated[0]),
                                np.concatenate(evaluated[1]))
  # The dataset holds row numbers, not the array.
  graph = pipeline.eval_dataset(on_disk, 8, None)._as_serialized_graph()  # pylint: disable=protected-access
  assert len(graph.numpy()) < on_disk.images.nbytes / 4


def _cached_top_run(tmp_path, name):
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target",
      model_dir=str(tmp_path / name), synthetic_examples_per_class=4,
      backbone="lenet", image_size=16, bottleneck_dim=8, batch_size=8,
      kmeans_iterations=2, epochs=2, steps_per_epoch=2, verbose=0,
      trainable_layers=2, cached_views=2, deterministic=True,
      feature_cache_dir=str(tmp_path / "cache"), export_dir="")
  data = run_data.load_data(settings)
  summary = runner.run(settings, data,
                       runner.distribute.create_strategy("default"))
  return data, summary


@pytest.mark.e2e
def test_a_run_trains_on_a_cache_on_disk_as_in_memory(tmp_path, monkeypatch):
  in_memory, expected = _cached_top_run(tmp_path, "in_memory")
  monkeypatch.setattr(feature_cache, "IN_MEMORY_SHARE", 0)
  on_disk, summary = _cached_top_run(tmp_path, "on_disk")
  assert not in_memory.source.is_on_disk
  assert on_disk.source.is_on_disk and on_disk.target.is_on_disk
  assert summary["target_accuracy"] == expected["target_accuracy"]
  assert summary["epoch_scores"] == expected["epoch_scores"]
