"""What each feature-cache file holds, when a run last used it, and which
files a clean-up may remove.

A cache file's name is a digest (`feature_cache.cache_key`): it says
nothing a person can read, and a changed setting (another transform,
number of views, weights file) starts a new file beside the old one,
which nothing uses again. So every cache file `<key>.npy` gets a record
`<key>.json` beside it, holding what the key was made from; its
modification time is when a run last read or wrote the cache. Files a
run was writing when it was killed (`<key>.npy.<pid>.tmp.npy`) are
listed too: they are never read and only take room.

This module sits outside `srdc_tf.data`, whose package imports TensorFlow,
so that `srdc-cache` lists a folder without loading it.
"""

import dataclasses
import datetime
import json
import os
import re

from absl import logging

from srdc_tf import write_guard

RECORD_SUFFIX = ".json"
_CACHE_SUFFIX = ".npy"
# `staging_path`'s names: `<key>.npy.<pid>.tmp.npy`.
_STAGING = re.compile(r"^.+\.npy\.(?P<pid>\d+)\.tmp\.npy$")


@dataclasses.dataclass(frozen=True)
class CacheEntry:
  """One file of a cache folder.

  Attributes:
    path: the `.npy` file.
    size: its size in bytes (its record's included).
    last_used: when a run last read or wrote it, in seconds since the
      epoch (its record's modification time; the file's own without one).
    record: what the cache holds (`write_record`'s description), or None
      for a file written before records existed, or a half-written one.
    writer_pid: for a half-written file, the process that was writing it;
      None for a whole cache file.
  """
  path: str
  size: int
  last_used: float
  record: dict = None
  writer_pid: int = None

  @property
  def is_partial(self):
    return self.writer_pid is not None


def staging_path(cache_path):
  """Where this process writes the cache file `cache_path` before renaming
  it into place (`<key>.npy.<pid>.tmp.npy`): named after the writer, so
  that a clean-up can tell a killed run's file from a live one's."""
  return f"{cache_path}.{os.getpid()}.tmp{_CACHE_SUFFIX}"


def record_path(cache_path):
  """The record beside the cache file `cache_path` (`<key>.json`)."""
  return cache_path[:-len(_CACHE_SUFFIX)] + RECORD_SUFFIX


def write_record(cache_path, description):
  """Writes the record of a cache file: `description` and when it was made.

  Written to a temporary file and renamed, so a record is whole or absent.
  A record is a convenience: a failure to write one is logged, never
  raised, so that a run never stops for it (a read-only shared cache
  folder, say).

  Args:
    cache_path: the cache's `.npy` file.
    description: a JSON-serialisable dict of what the cache holds.
  """
  path = record_path(cache_path)
  record = dict(description, created=datetime.datetime.now(
      datetime.timezone.utc).isoformat(timespec="seconds"))
  staging = f"{path}.{os.getpid()}.tmp"
  try:
    with open(staging, "w") as f:
      json.dump(record, f, indent=1, sort_keys=True)
    os.replace(staging, path)
  except OSError as error:
    logging.info("No record written for the feature cache %s (%s)",
                 cache_path, error)
    try:
      os.remove(staging)
    except OSError:
      pass


def mark_used(cache_path, description):
  """Notes that a run read the cache file: its record's time becomes now.

  A cache written before records existed gets its record here. As
  `write_record`, never raises.

  Args:
    cache_path: the cache's `.npy` file.
    description: what the cache holds, for a record not yet written.
  """
  path = record_path(cache_path)
  if not os.path.isfile(path):
    write_record(cache_path, description)
    return
  try:
    os.utime(path)
  except OSError as error:
    logging.info("The feature cache record %s was not touched (%s)", path,
                 error)


def _read_record(path):
  try:
    with open(path) as f:
      record = json.load(f)
    return record if isinstance(record, dict) else None
  except (OSError, ValueError):
    return None


def list_entries(cache_dir):
  """Every cache file in `cache_dir`, whole or half-written, oldest use
  first.

  Args:
    cache_dir: a feature cache folder (`--feature_cache_dir`).

  Returns:
    A list of `CacheEntry`.

  Raises:
    ValueError: `cache_dir` is not a folder (naming it).
  """
  if not os.path.isdir(cache_dir):
    raise ValueError(f"no folder {cache_dir!r} (looked in "
                     f"{os.path.abspath(cache_dir)})")
  entries = []
  for name in sorted(os.listdir(cache_dir)):
    path = os.path.join(cache_dir, name)
    if not os.path.isfile(path) or not name.endswith(_CACHE_SUFFIX):
      continue
    stat = os.stat(path)
    staging = _STAGING.match(name)
    if staging:
      entries.append(CacheEntry(path, stat.st_size, stat.st_mtime,
                                writer_pid=int(staging.group("pid"))))
      continue
    record_file = record_path(path)
    record, size, last_used = None, stat.st_size, stat.st_mtime
    if os.path.isfile(record_file):
      record = _read_record(record_file)
      record_stat = os.stat(record_file)
      size += record_stat.st_size
      last_used = max(last_used, record_stat.st_mtime)
    entries.append(CacheEntry(path, size, last_used, record))
  return sorted(entries, key=lambda entry: entry.last_used)


def removable(entries, unused_for_seconds, now, process_exists=None):
  """The entries a clean-up may remove: not used for `unused_for_seconds`.

  A half-written file counts by when it was last written to, and is kept
  while the process writing it runs on this machine, however old.

  Args:
    entries: `CacheEntry`s (`list_entries`).
    unused_for_seconds: the least time since last use of an entry removed.
    now: the current time, in seconds since the epoch.
    process_exists: `pid -> bool` (default: whether it runs here).

  Returns:
    The entries to remove, in the order given.

  Raises:
    ValueError: a negative `unused_for_seconds`.
  """
  if unused_for_seconds < 0:
    raise ValueError(
        f"unused_for_seconds must be >= 0, got {unused_for_seconds!r}")
  process_exists = process_exists or write_guard.process_alive
  return [entry for entry in entries
          if now - entry.last_used >= unused_for_seconds
          and not (entry.is_partial and process_exists(entry.writer_pid))]


def remove(entries):
  """Deletes the entries' files and records.

  Args:
    entries: `CacheEntry`s.

  Returns:
    The bytes freed.
  """
  freed = 0
  for entry in entries:
    paths = [entry.path]
    if not entry.is_partial:
      paths.append(record_path(entry.path))
    for path in paths:
      try:
        size = os.stat(path).st_size
        os.remove(path)
        freed += size
      except FileNotFoundError:
        pass  # Removed meanwhile (another clean-up): nothing to free.
  return freed
