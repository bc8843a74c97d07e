r"""Lists a feature cache folder and removes what no run has used lately.

  python -m srdc_tf.cache --cache_dir=runs/cache
  python -m srdc_tf.cache --cache_dir=runs/cache --prune_unused_days=30 --dry_run
  python -m srdc_tf.cache --cache_dir=runs/cache --prune_unused_days=30

A run with `--feature_cache_dir` keeps one file per domain and setting
there (frozen features, or a backbone's activations at a cut, for a number
of views); another transform, view count or weights file starts a new file
and leaves the old one. Each file is listed with what it holds, its size
and when a run last read it. `--prune_unused_days=N` removes the files no
run has read or written for N days, and files left half-written by a run
that was killed (never those of a run still writing them). A removed
cache is only derived data: the next run that needs it computes it again.
"""

import datetime
import os
import time

from absl import app
from absl import flags

from srdc_tf import cli
from srdc_tf import cache_records

FLAGS = flags.FLAGS
flags.DEFINE_string("cache_dir", None, "The feature cache folder (the "
                    "--feature_cache_dir of srdc-train).")
flags.DEFINE_float("prune_unused_days", None, "Remove the cache files that "
                   "no run has used for this many days (0: all of them); "
                   "unset: list only.")
flags.DEFINE_boolean("dry_run", False, "With --prune_unused_days: say what "
                     "would be removed, remove nothing.")
flags.mark_flags_as_required(["cache_dir"])

_SECONDS_PER_DAY = 86400.0


def _files(count):
  return f"{count} cache file" + ("" if count == 1 else "s")


def _megabytes(size):
  return f"{size / 2**20:.1f} MB"


def describe(entry):
  """One line about a cache file: when it was last used, its size and what
  it holds.

  Args:
    entry: a `cache_records.CacheEntry`.

  Returns:
    A string.
  """
  used = datetime.datetime.fromtimestamp(entry.last_used).strftime(
      "%Y-%m-%d %H:%M")
  name = os.path.basename(entry.path)
  if entry.is_partial:
    what = f"half-written by process {entry.writer_pid}"
  elif entry.record is None:
    what = "written before records: what it holds is not known"
  else:
    record = entry.record
    views = record.get("views")
    what = (f"{record.get('domain')} ({record.get('examples')} images"
            + (f" x {views} views" if views else "") + f"), "
            f"{record.get('backbone')}, {record.get('transform')}")
  return f"{used}  {_megabytes(entry.size):>10}  {name}: {what}"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.prune_unused_days is not None and FLAGS.prune_unused_days < 0:
    raise app.UsageError("--prune_unused_days must be >= 0, got "
                         f"{FLAGS.prune_unused_days!r}")
  try:
    entries = cache_records.list_entries(FLAGS.cache_dir)
  except ValueError as error:
    raise app.UsageError(f"--cache_dir: {error}") from error
  print(f"{FLAGS.cache_dir}: {_files(len(entries))}, "
        f"{_megabytes(sum(entry.size for entry in entries))}, "
        "oldest use first")
  for entry in entries:
    print("  " + describe(entry))
  if FLAGS.prune_unused_days is None:
    return
  stale = cache_records.removable(
      entries, FLAGS.prune_unused_days * _SECONDS_PER_DAY, time.time())
  size = _megabytes(sum(entry.size for entry in stale))
  unused = f"unused for {FLAGS.prune_unused_days:g} days or more"
  if FLAGS.dry_run:
    print(f"Would remove {_files(len(stale))} {unused} ({size}); "
          "nothing removed (--dry_run):")
    for entry in stale:
      print("  " + os.path.basename(entry.path))
    return
  freed = cache_records.remove(stale)
  print(f"Removed {_files(len(stale))} {unused}: {_megabytes(freed)} "
        "freed.")


def cli_main():
  """The `srdc-cache` console script."""
  cli.run(main, doc=__doc__, tensorflow=False)


if __name__ == "__main__":
  cli_main()
