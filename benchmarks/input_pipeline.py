r"""Images/s of the real training input pipeline, against what the
training step consumes.

Times `srdc_tf.data.pipeline.train_dataset` (read, decode, resize the
shorter side to 256, random crop 224, random flip, batch, for a source and
a target stream at once) on the Office-31 JPEGs, after `--warmup_batches`.
Images/s counts the source and the target images of a batch. It also
measures the CPU time the pipeline burns per image, which is what feeding a
training step takes away from it on a CPU-only machine.

  python benchmarks/input_pipeline.py --data_root=/work/shared/data \
      --consumer_images_per_s=resnet50_float32=4.63,resnet50_mixed_bfloat16=6.30

`--consumer_images_per_s` is what the training step consumes (images/s of
`benchmarks/train_step.py` with the same backbone and image size).
"""

import os
import time

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_string("data_root", os.environ.get("SRDC_DATA_ROOT",
                                                "/work/shared/data"),
                    "Folder that holds office31/.")
flags.DEFINE_string("domain", "office31/amazon", "Domain spec (used as both "
                    "source and target stream).")
flags.DEFINE_integer("image_size", 224, "Crop side.")
flags.DEFINE_integer("resize_size", 256, "Shorter side before cropping.")
flags.DEFINE_integer("batch_size", 32, "Images per domain per batch.")
flags.DEFINE_integer("warmup_batches", 3, "Untimed batches first.")
flags.DEFINE_integer("batches", 25, "Timed batches.")
flags.DEFINE_list("consumer_images_per_s", [],
                  "name=images/s of the training step to compare with, e.g. "
                  "resnet50_float32=4.63,resnet50_mixed_bfloat16=6.30.")


def main(argv):
  del argv
  report = benchlib.Report(
      f"Input pipeline: {FLAGS.domain}, resize {FLAGS.resize_size}, "
      f"random crop {FLAGS.image_size}, random flip")
  import psutil  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import sources  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import transforms  # pylint: disable=g-import-not-at-top

  domain = sources.load_domain(FLAGS.domain, data_root=FLAGS.data_root)
  transform = transforms.ImageTransform(
      FLAGS.image_size, resize_size=FLAGS.resize_size, random_flip=True)
  dataset = pipeline.train_dataset(domain, domain, FLAGS.batch_size,
                                   transform)
  iterator = iter(dataset)
  for _ in range(FLAGS.warmup_batches):
    next(iterator)
  process = psutil.Process()
  cpu_start, start = process.cpu_times(), time.perf_counter()
  for _ in range(FLAGS.batches):
    batch = next(iterator)
  seconds = time.perf_counter() - start
  cpu_end = process.cpu_times()
  cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
  assert batch["source_image"].shape[1:] == transform.shape
  images = 2 * FLAGS.batch_size * FLAGS.batches
  rate = images / seconds
  cpu_per_image = cpu / images
  report.table(
      ["domain", "images", "batch (source + target)", "images/s",
       "CPU ms per image", "cores busy"],
      [[FLAGS.domain, len(domain), f"{FLAGS.batch_size} + "
        f"{FLAGS.batch_size}", rate, 1000 * cpu_per_image, cpu / seconds]],
      caption=f"{FLAGS.batches} batches after {FLAGS.warmup_batches} "
      "warm-up ones; JPEGs read from disk (page cache warm after the "
      "warm-up).")
  rows = []
  for item in FLAGS.consumer_images_per_s:
    name, _, value = item.partition("=")
    consumed = float(value)
    rows.append([name, consumed, f"{rate / consumed:.0f}x",
                 f"{100 * consumed * cpu_per_image / os.cpu_count():.1f}%"])
  if rows:
    report.table(
        ["training step", "consumes images/s", "pipeline / step",
         "share of the CPU the pipeline needs to keep up"], rows)
  report.print()


if __name__ == "__main__":
  app.run(main)
