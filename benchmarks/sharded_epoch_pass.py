r"""The per-epoch pass (inference over both domains, centroids, k-means,
source weights) at 1 worker and at 2 workers sharing it.

Each configuration runs in fresh processes: one process on the default
strategy, or W local processes of a `MultiWorkerMirroredStrategy` cluster
on 127.0.0.1, each embedding its shard of the source and target and
all-reducing the clustering's per-cluster sums and counts
(`distribute.epoch_sharding`, what `srdc_tf.train` does). Every process
builds the same seeded model and domains, runs the pass of the first epoch
once (tracing, warm-up), then times the pass of a later epoch (k-means
from the target centroids by prediction, and source weights): wall time,
the process's CPU seconds, and its peak resident memory during the pass
(sampled every 5 ms). The configurations alternate, `--repeats` times, and
the table gives medians. On a machine with fewer cores than workers, the
workers share them, so wall time cannot halve there; the CPU seconds per
worker show the work each one does. The last column checks that the
sharded run ends with the unsharded run's pseudo-labels.

  python benchmarks/sharded_epoch_pass.py
  python benchmarks/sharded_epoch_pass.py --examples_per_class=400 --repeats=3
"""

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_integer("workers", 2, "Workers of the sharded configuration.")
flags.DEFINE_integer("repeats", 2, "Runs of each configuration, alternating.")
flags.DEFINE_string("backbone", "mobilenet_v2", "Backbone (random weights).")
flags.DEFINE_integer("image_size", 64, "Image side.")
flags.DEFINE_integer("examples_per_class", 200, "Synthetic images per "
                     "class and domain (6 classes).")
flags.DEFINE_integer("batch_size", 128, "Inference batch size.")
flags.DEFINE_integer("threads", 0, "Intra-op threads per process (0: "
                     "TensorFlow's default).")
# Internal: one process of a configuration.
flags.DEFINE_integer("worker_index", None, "Run as this worker.")
flags.DEFINE_string("ports", "", "Ports of the cluster's workers.")


def _free_port():
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


class _PeakMemory:
  """The highest resident set size (MB) while the block runs."""

  def __init__(self):
    self.peak = 0.0
    self._stop = threading.Event()

  @staticmethod
  def rss_mb():
    return benchlib.resident_bytes() / 2**20

  def __enter__(self):
    self.peak = self.rss_mb()
    self._thread = threading.Thread(target=self._sample, daemon=True)
    self._thread.start()
    return self

  def _sample(self):
    while not self._stop.wait(0.005):
      self.peak = max(self.peak, self.rss_mb())

  def __exit__(self, *unused):
    self._stop.set()
    self._thread.join()
    self.peak = max(self.peak, self.rss_mb())


def run_worker():
  """One process: build, warm up, time one later-epoch pass, print JSON."""
  ports = [int(p) for p in FLAGS.ports.split(",") if p]
  if ports:
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": FLAGS.worker_index}})
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from srdc_tf import callbacks  # pylint: disable=g-import-not-at-top
  from srdc_tf import distribute  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import sources  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import transforms  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import backbones  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import srdc_model  # pylint: disable=g-import-not-at-top
  if FLAGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
  strategy = distribute.create_strategy(
      "multi_worker" if ports else "default")
  sharding = distribute.epoch_sharding(strategy)
  transform = transforms.ImageTransform(FLAGS.image_size)
  domains = [sources.load_domain(
      f"synthetic:{side}", seed=0,
      synthetic_examples_per_class=FLAGS.examples_per_class)
             for side in ("source", "target")]
  keras.utils.set_random_seed(0)
  with strategy.scope():
    model = srdc_model.SRDCModel(
        backbones.build_backbone(FLAGS.backbone, transform.shape),
        num_classes=domains[0].num_classes, input_shape=transform.shape,
        num_source_examples=len(domains[0]),
        num_target_examples=len(domains[1]))
  shards = [[pipeline.eval_dataset(domain, FLAGS.batch_size, transform,
                                   shard=shard)
             for shard in sharding.dataset_shards(len(domain))]
            for domain in domains]
  state = callbacks.EpochStateCallback(
      None, None, epochs=10, source_shards=shards[0],
      target_shards=shards[1], sum_over_shards=sharding.sum_over_shards)
  state.set_model(model)
  state.on_epoch_begin(0)  # Traces everything; k-means from the source.
  cpu_start, wall_start = time.process_time(), time.perf_counter()
  with _PeakMemory() as memory:
    state.on_epoch_begin(1)
  wall = time.perf_counter() - wall_start
  cpu = time.process_time() - cpu_start
  pseudo = np.asarray(model.target_pseudo_labels)
  print(json.dumps({
      "wall": wall, "cpu": cpu, "peak_mb": memory.peak,
      "embedded": sum(sum(1 for _ in ds.unbatch()) for ds in shards[0])
                  + sum(sum(1 for _ in ds.unbatch()) for ds in shards[1]),
      "pseudo_labels": pseudo.tolist(),
      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  }), flush=True)


def run_configuration(workers):
  """Runs one configuration; returns each worker's JSON report."""
  ports = [_free_port() for _ in range(workers)] if workers > 1 else []
  argv = [sys.executable, os.path.abspath(__file__),
          f"--backbone={FLAGS.backbone}", f"--image_size={FLAGS.image_size}",
          f"--examples_per_class={FLAGS.examples_per_class}",
          f"--batch_size={FLAGS.batch_size}", f"--threads={FLAGS.threads}",
          f"--ports={','.join(map(str, ports))}"]
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  processes = [subprocess.Popen(argv + [f"--worker_index={index}"],
                                stdout=subprocess.PIPE, text=True, env=env)
               for index in range(workers)]
  reports = []
  for process in processes:
    out, _ = process.communicate(timeout=1800)
    if process.returncode:
      raise RuntimeError(f"a worker of {workers} failed "
                         f"(status {process.returncode})")
    reports.append(json.loads(out.strip().splitlines()[-1]))
  return reports


def main(argv):
  del argv
  if FLAGS.worker_index is not None:
    run_worker()
    return
  report = benchlib.Report(
      f"Per-epoch pass, 1 worker against {FLAGS.workers} sharing it")
  runs = {1: [], FLAGS.workers: []}
  for _ in range(FLAGS.repeats):
    for workers in runs:
      runs[workers].append(run_configuration(workers))
  med = benchlib.median
  one_wall = med([r[0]["wall"] for r in runs[1]])
  one_cpu = med([r[0]["cpu"] for r in runs[1]])
  reference = runs[1][0][0]["pseudo_labels"]
  rows = []
  for workers, repeats in runs.items():
    wall = med([max(w["wall"] for w in r) for r in repeats])
    cpu = med([sum(w["cpu"] for w in r) / workers for r in repeats])
    peak = med([max(w["peak_mb"] for w in r) for r in repeats])
    embedded = repeats[0][0]["embedded"]
    same = all(w["pseudo_labels"] == reference for r in repeats for w in r)
    rows.append([workers, embedded, wall, one_wall / wall, cpu,
                 cpu / one_cpu, peak, "yes" if same else "NO"])
  report.table(
      ["workers", "images embedded per worker", "wall s (slowest worker)",
       "speedup", "CPU s per worker", "CPU per worker vs 1 worker",
       "peak RSS per worker MB", "pseudo-labels = 1 worker's"], rows,
      caption=f"{FLAGS.backbone} at {FLAGS.image_size} px (random weights), "
              f"{6 * FLAGS.examples_per_class} source + "
              f"{6 * FLAGS.examples_per_class} target images, inference "
              f"batch {FLAGS.batch_size}; medians of {FLAGS.repeats}.")
  report.print()


if __name__ == "__main__":
  app.run(main)
