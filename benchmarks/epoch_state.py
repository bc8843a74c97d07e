r"""Time and peak memory of SRDC's per-epoch state update, given features.

`srdc_tf.clustering.compute_epoch_state` (source and target centroids,
5 k-means iterations at `f` and at `h`, source weights) on synthetic,
seeded features: N target and N source samples in K Gaussian clusters,
`f` of D dimensions and `h` of 512. Each size runs in a fresh subprocess,
which allocates the features the way `inference.extract` does (64-byte
aligned float32), traces the update on a few rows, then times it, for the
first epoch (k-means from the source centroids, weights 1) and a later one
(k-means from the target centroids by prediction, and source weights).
CPU s is the process's CPU time over the later-epoch call, which the load
of a shared machine changes less than the wall time. Peak memory is the
highest resident set size during the timed calls (sampled every 5 ms, and
the kernel's high-water mark) minus the resident set size before them,
which holds the features.

  python benchmarks/epoch_state.py
  python benchmarks/epoch_state.py --sizes=55000x12x2048 --repeats=3
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
TARGETS = ["4000x31x2048", "55000x12x2048", "120000x345x2048"]
GROWTH = ["30000x345x2048", "60000x345x2048", "55000x31x2048",
          "55000x100x2048"]
flags.DEFINE_list("sizes", TARGETS + GROWTH, "NxKxD of each run: N target "
                  "(and N source) samples, K classes, D dimensions of f.")
flags.DEFINE_integer("h_dim", 512, "Dimensions of h.")
flags.DEFINE_integer("repeats", 1, "Timed calls per epoch kind (median).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic features.")
flags.DEFINE_string("child", None, "Internal: measure this NxKxD here.")


def _features(rng, n, d, means, labels, chunk=8192):
  """`means[labels] + noise`, written chunk by chunk into an aligned array
  (no full-size temporaries, so the memory baseline is the features)."""
  from srdc_tf.clustering import arrays  # pylint: disable=g-import-not-at-top
  out = arrays.aligned_empty((n, d))
  for start in range(0, n, chunk):
    rows = slice(start, min(start + chunk, n))
    out[rows] = rng.standard_normal((rows.stop - start, d), dtype="float32")
    out[rows] += means[labels[rows]]
  return out


def _cpu_seconds():
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


class _PeakRss:
  """Highest resident set size, sampled every 5 ms in a thread."""

  def __init__(self):
    import psutil  # pylint: disable=g-import-not-at-top
    self._process = psutil.Process()
    self.peak = self._process.memory_info().rss
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._poll, daemon=True)

  def _poll(self):
    while not self._stop.wait(0.005):
      self.peak = max(self.peak, self._process.memory_info().rss)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def _child(size):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import psutil  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from srdc_tf import clustering  # pylint: disable=g-import-not-at-top
  n, k, d = (int(x) for x in size.split("x"))
  rng = np.random.default_rng(FLAGS.seed)
  source_labels = rng.integers(0, k, n).astype(np.int32)
  target_labels = rng.integers(0, k, n).astype(np.int32)
  # Target clusters shifted from the source ones (a domain gap).
  means_f = 3.0 * rng.standard_normal((k, d), dtype="float32")
  means_h = 3.0 * rng.standard_normal((k, FLAGS.h_dim), dtype="float32")
  shift_f = rng.standard_normal((k, d), dtype="float32")
  shift_h = rng.standard_normal((k, FLAGS.h_dim), dtype="float32")
  inputs = dict(
      source_f=_features(rng, n, d, means_f, source_labels),
      source_h=_features(rng, n, FLAGS.h_dim, means_h, source_labels),
      source_labels=source_labels,
      target_f=_features(rng, n, d, means_f + shift_f, target_labels),
      target_h=_features(rng, n, FLAGS.h_dim, means_h + shift_h,
                         target_labels),
      # A classifier that is right 70% of the time.
      target_predictions=np.where(rng.random(n) < 0.7, target_labels,
                                  rng.integers(0, k, n)).astype(np.int32))
  feature_bytes = sum(v.nbytes for v in inputs.values())

  def update(first_epoch, rows=None):
    args = {key: value[:rows] for key, value in inputs.items()}
    state = clustering.compute_epoch_state(num_classes=k,
                                           first_epoch=first_epoch, **args)
    np.asarray(state.pseudo_labels), np.asarray(state.source_weights)
    return state

  for first_epoch in (True, False):  # Traces, on a few rows.
    update(first_epoch, rows=256)
  process = psutil.Process()
  baseline = process.memory_info().rss
  high_water_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  times = {}
  with _PeakRss() as sampler:
    for first_epoch in (True, False):
      runs, cpu = [], []
      for _ in range(FLAGS.repeats):
        cpu_start, start = _cpu_seconds(), time.perf_counter()
        update(first_epoch)
        runs.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds() - cpu_start)
      kind = "first" if first_epoch else "later"
      times[kind] = benchlib.median(runs)
      times[f"{kind}_cpu"] = benchlib.median(cpu)
  high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  # The kernel's high-water mark counts only when the timed calls raised it.
  peak = max(sampler.peak, high_water if high_water >
             high_water_before * 1024 else 0)
  print(json.dumps({
      "size": size, "n": n, "k": k, "d": d, **times,
      "peak_above_features": peak - baseline,
      "features": feature_bytes, "tf": tf.__version__}))


def _gib(value):
  return value / 2 ** 30


def main(argv):
  del argv
  if FLAGS.child:
    _child(FLAGS.child)
    return
  report = benchlib.Report(
      "Per-epoch state update (compute_epoch_state), features given")
  rows = []
  for size in FLAGS.sizes:
    command = [sys.executable, os.path.abspath(__file__), f"--child={size}",
               f"--h_dim={FLAGS.h_dim}", f"--repeats={FLAGS.repeats}",
               f"--seed={FLAGS.seed}"]
    result = subprocess.run(
        command, capture_output=True, text=True, check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode:
      sys.exit(f"{size} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(measured), flush=True)
    n, k = measured["n"], measured["k"]
    rows.append([f"{n // 1000}k", k, measured["d"], measured["first"],
                 measured["later"], measured["later_cpu"],
                 1e6 * measured["later"] / n,
                 f"{_gib(measured['features']):.2f}",
                 f"{_gib(measured['peak_above_features']):.2f}"])
  report.table(
      ["N (target = source)", "K", "D (f; h 512)", "first epoch s",
       "later epoch s", "later epoch CPU s", "later epoch us per sample",
       "features GiB", "peak above features GiB"], rows,
      caption=f"Median of {FLAGS.repeats} call(s) per epoch kind, each size "
      "in a fresh process, after a trace on 256 rows. CPU s is the "
      "process's user + system time: on an idle machine the wall time is "
      "at least CPU s / cores, whatever else runs beside it.")
  report.print()


if __name__ == "__main__":
  app.run(main)
