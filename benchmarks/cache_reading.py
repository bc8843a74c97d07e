r"""Memory and speed of training on a cache read from disk by rows
(`npy_rows.NpyRows`, what `--feature_cache_dir` gives a run) against the
same cache loaded whole into memory (what runs did before).

Each way runs in a fresh process (so its memory is its own): it builds the
domain from the cache file, reads `--batches` training batches of
`pipeline.train_dataset` (the same domain as source and target, one view
drawn per example and step, as a fine-tuning run does), then one
evaluation pass over every row (view 0; the per-epoch pass and the
scoring). Memory is the process' peak resident size above what it held
after importing TensorFlow. The ways take turns, `--rounds` times.

  python benchmarks/cache_reading.py \
      --cache=runs/office31_finetune/feature_cache/office31_amazon-<key>.npy

Without `--cache` a file of random rows of `--rows` x `--row_shape` (by
default Office-31 Amazon's fine-tuning cache: 2817 images x 4 views x the
7 x 7 x 160 activations of MobileNetV2 at its last block) is written to a
temporary folder first.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_string("cache", None, "A feature cache `.npy` file "
                    "(default: a random one of --rows x --row_shape).")
flags.DEFINE_integer("rows", 2817, "Rows of the random cache.")
flags.DEFINE_list("row_shape", ["4", "7", "7", "160"], "Shape of a row of "
                  "the random cache: views, then one view's activations.")
flags.DEFINE_integer("batch_size", 64, "Rows per domain per training batch.")
flags.DEFINE_integer("warmup_batches", 3, "Untimed training batches first.")
flags.DEFINE_integer("batches", 40, "Timed training batches.")
flags.DEFINE_integer("eval_batch", 128, "Batch of the evaluation pass.")
flags.DEFINE_integer("rounds", 2, "Times each way runs, taking turns.")
flags.DEFINE_enum("child", None, ["in_memory", "on_disk"],
                  "Internal: run one way in this process, print JSON.")

WAYS = ("in_memory", "on_disk")


def _peak_rss_bytes():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(way):
  """Runs one way in this process; returns its figures."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import
  from srdc_tf.data import domain as domain_lib  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import npy_rows  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  baseline = benchlib.resident_bytes()
  start = time.perf_counter()
  images = (np.load(FLAGS.cache) if way == "in_memory"
            else npy_rows.NpyRows(FLAGS.cache))
  domain = domain_lib.Domain(
      name="cache", class_names=tuple(str(k) for k in range(31)),
      labels=np.arange(len(images), dtype=np.int32) % 31, images=images,
      cached_views=True)
  iterator = iter(pipeline.train_dataset(domain, domain, FLAGS.batch_size,
                                         None))
  for _ in range(FLAGS.warmup_batches):
    next(iterator)
  ready = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(FLAGS.batches):
    batch = next(iterator)
  train_seconds = time.perf_counter() - start
  assert batch["source_image"].shape[1:] == images.shape[2:]
  start = time.perf_counter()
  rows = sum(len(x) for x, _, _ in pipeline.eval_dataset(
      domain, FLAGS.eval_batch, None))
  eval_seconds = time.perf_counter() - start
  assert rows == len(images)
  return {"way": way, "ready_s": ready,
          "train_rows_per_s": 2 * FLAGS.batch_size * FLAGS.batches
                              / train_seconds,
          "eval_rows_per_s": rows / eval_seconds,
          "peak_mb": (_peak_rss_bytes() - baseline) / 2**20,
          "cache_mb": images.nbytes / 2**20}


def _random_cache(folder):
  import numpy as np  # pylint: disable=g-import-not-at-top
  path = os.path.join(folder, "random_cache.npy")
  shape = (FLAGS.rows, *(int(d) for d in FLAGS.row_shape))
  rows = np.lib.format.open_memmap(path, "w+", np.float32, shape)
  generator = np.random.default_rng(0)
  for start in range(0, FLAGS.rows, 256):
    block = rows[start:start + 256]
    block[...] = generator.random(block.shape, np.float32)
  rows.flush()
  del rows
  return path


def _run_child(way, cache):
  command = [sys.executable, os.path.abspath(__file__), f"--child={way}",
             f"--cache={cache}", f"--batch_size={FLAGS.batch_size}",
             f"--warmup_batches={FLAGS.warmup_batches}",
             f"--batches={FLAGS.batches}", f"--eval_batch={FLAGS.eval_batch}"]
  done = subprocess.run(command, check=True, capture_output=True, text=True)
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  if FLAGS.child:
    print(json.dumps(_child(FLAGS.child)), flush=True)
    return
  report = benchlib.Report("Training on a cache read by rows from disk "
                           "against the cache loaded into memory")
  with tempfile.TemporaryDirectory() as folder:
    cache = FLAGS.cache or _random_cache(folder)
    results = [_run_child(way, cache)
               for _ in range(FLAGS.rounds) for way in WAYS]
  rows = []
  for way in WAYS:
    mine = [r for r in results if r["way"] == way]
    rows.append([way, mine[0]["cache_mb"],
                 benchlib.median([r["peak_mb"] for r in mine]),
                 benchlib.median([r["train_rows_per_s"] for r in mine]),
                 benchlib.median([r["eval_rows_per_s"] for r in mine]),
                 benchlib.median([r["ready_s"] for r in mine])])
  report.table(
      ["way", "cache MB", "peak memory above start MB (median)",
       "training rows/s (median)", "evaluation rows/s (median)",
       "to the first batches s (median)"], rows,
      caption=f"{os.path.basename(cache) if FLAGS.cache else 'random cache'}"
      f"; {FLAGS.batches} batches of {FLAGS.batch_size} + "
      f"{FLAGS.batch_size} after {FLAGS.warmup_batches}; {FLAGS.rounds} "
      "rounds, the ways taking turns.")
  report.print()


if __name__ == "__main__":
  app.run(main)
