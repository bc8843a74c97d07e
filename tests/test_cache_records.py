"""Feature-cache records, the listing and the clean-up of unused caches
(`srdc_tf.cache_records`, `srdc-cache`)."""

import json
import os
import subprocess
import sys
import time

import pytest

from srdc_tf import cache_records
from srdc_tf.data import feature_cache
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.models import build_backbone
import serving_testlib

_DAY = 86400.0


def _cache_file(folder, key, size=100, used_days_ago=0.0, record=True):
  """A cache file of `size` bytes (and its record), last used then."""
  path = os.path.join(folder, key + ".npy")
  with open(path, "wb") as f:
    f.write(b"\0" * size)
  if record:
    cache_records.write_record(path, {"domain": key, "examples": 5,
                                      "views": 4, "backbone": "lenet",
                                      "transform": "T"})
  when = time.time() - used_days_ago * _DAY
  for name in (path, cache_records.record_path(path)):
    if os.path.exists(name):
      os.utime(name, (when, when))
  return path


def test_a_built_cache_gets_a_record_that_each_read_touches(tmp_path):
  domain = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=2)
  transform, cache_dir, backbone_id = (transforms.ImageTransform(32),
                                       str(tmp_path), "lenet:random")
  args = (domain, build_backbone("lenet", (32, 32, 3), trainable=False),
          transform, 8, cache_dir, backbone_id)
  feature_cache.backbone_features(*args)
  key = feature_cache.cache_key(domain, backbone_id, transform)
  path = os.path.join(cache_dir, key + ".npy")
  with open(cache_records.record_path(path)) as f:
    record = json.load(f)
  description = feature_cache.cache_description(domain, backbone_id,
                                                transform)
  assert {name: record[name] for name in description} == description
  assert record["created"]
  old = time.time() - 10 * _DAY
  os.utime(cache_records.record_path(path), (old, old))
  feature_cache.backbone_features(*args)
  [entry] = cache_records.list_entries(cache_dir)
  assert time.time() - entry.last_used < _DAY
  # A cache from before records gets one when it is next read.
  os.remove(cache_records.record_path(path))
  feature_cache.backbone_features(*args)
  assert cache_records.list_entries(cache_dir)[0].record["domain"] == (
      domain.name)


def test_a_record_that_cannot_be_written_does_not_stop_a_run(tmp_path):
  path = str(tmp_path / "missing_folder" / "key.npy")
  cache_records.write_record(path, {"domain": "d"})
  cache_records.mark_used(path, {"domain": "d"})
  assert not os.path.exists(tmp_path / "missing_folder")


def test_entries_are_listed_oldest_use_first_with_what_they_hold(tmp_path):
  folder = str(tmp_path)
  _cache_file(folder, "recent", 10, used_days_ago=1)
  old = _cache_file(folder, "old", 20, used_days_ago=40)
  _cache_file(folder, "unrecorded", 30, used_days_ago=5, record=False)
  partial = _cache_file(folder, "k", 40, used_days_ago=2, record=False)
  os.rename(partial, partial + ".123.tmp.npy")
  (tmp_path / "notes.txt").write_text("not a cache")
  entries = cache_records.list_entries(folder)
  assert [os.path.basename(entry.path) for entry in entries] == [
      "old.npy", "unrecorded.npy", "k.npy.123.tmp.npy", "recent.npy"]
  by_name = {os.path.basename(entry.path): entry for entry in entries}
  assert by_name["old.npy"].record["domain"] == "old"
  assert by_name["old.npy"].size == 20 + os.path.getsize(
      cache_records.record_path(old))
  assert by_name["unrecorded.npy"].record is None
  assert by_name["k.npy.123.tmp.npy"].writer_pid == 123
  assert by_name["k.npy.123.tmp.npy"].is_partial
  assert not by_name["recent.npy"].is_partial


def test_a_file_being_written_is_listed_as_its_writer_s(tmp_path):
  staging = cache_records.staging_path(str(tmp_path / "key.npy"))
  with open(staging, "wb") as f:
    f.write(b"\0" * 8)
  [entry] = cache_records.list_entries(str(tmp_path))
  assert entry.is_partial and entry.writer_pid == os.getpid()
  # The writer runs: no clean-up removes its file, however old.
  assert cache_records.removable([entry], 0, time.time() + 365 * _DAY) == []


def test_no_folder_is_an_error_naming_it(tmp_path):
  with pytest.raises(ValueError, match="no folder '.*nowhere'"):
    cache_records.list_entries(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("days, writer_runs, expected", [
    (30, False, ["old.npy"]),
    (3, False, ["old.npy", "unrecorded.npy", "dead.npy.7.tmp.npy"]),
    (3, True, ["old.npy", "unrecorded.npy"]),
    (0, True, ["old.npy", "unrecorded.npy", "recent.npy"]),
])
def test_removable_are_the_unused_and_never_a_live_writer_s(
    tmp_path, days, writer_runs, expected):
  folder = str(tmp_path)
  _cache_file(folder, "recent", used_days_ago=1)
  _cache_file(folder, "old", used_days_ago=40)
  _cache_file(folder, "unrecorded", used_days_ago=5, record=False)
  partial = _cache_file(folder, "dead", used_days_ago=4, record=False)
  os.rename(partial, partial + ".7.tmp.npy")
  stale = cache_records.removable(cache_records.list_entries(folder),
                                  days * _DAY, time.time(),
                                  process_exists=lambda pid: writer_runs)
  assert sorted(os.path.basename(entry.path) for entry in stale) == sorted(
      expected)


def test_a_negative_age_is_refused():
  with pytest.raises(ValueError, match="got -1"):
    cache_records.removable([], -1, time.time())


def test_remove_deletes_files_and_records_and_counts_bytes(tmp_path):
  folder = str(tmp_path)
  _cache_file(folder, "kept", 10)
  _cache_file(folder, "gone", 50)
  entries = {os.path.basename(entry.path): entry
             for entry in cache_records.list_entries(folder)}
  freed = cache_records.remove([entries["gone.npy"]])
  assert freed == entries["gone.npy"].size
  assert sorted(os.listdir(folder)) == ["kept.json", "kept.npy"]
  assert cache_records.remove([entries["gone.npy"]]) == 0  # Already gone.


def _cache_binary(*args):
  return subprocess.run([sys.executable, "-m", "srdc_tf.cache", *args],
                        cwd=serving_testlib.REPO, capture_output=True,
                        text=True, timeout=120)


@pytest.mark.parametrize("dry_run", [True, False])
def test_the_binary_lists_and_prunes(tmp_path, dry_run):
  folder = str(tmp_path)
  _cache_file(folder, "recent", 2**20, used_days_ago=1)
  _cache_file(folder, "old", 3 * 2**20, used_days_ago=40)
  result = _cache_binary(f"--cache_dir={folder}", "--prune_unused_days=30",
                         *(["--dry_run"] if dry_run else []))
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith(f"{folder}: 2 cache files, 4.0 MB")
  assert lines[1].endswith("old.npy: old (5 images x 4 views), lenet, T")
  assert "recent.npy" in lines[2]
  if dry_run:
    assert lines[3].startswith("Would remove 1 cache file unused for 30 "
                               "days or more (3.0 MB); nothing removed")
    assert lines[4].strip() == "old.npy"
    assert len(os.listdir(folder)) == 4
  else:
    assert lines[3].startswith("Removed 1 cache file unused for 30 days or "
                               "more: 3.0 MB freed")
    assert sorted(os.listdir(folder)) == ["recent.json", "recent.npy"]
