r"""Epoch cost with a frozen backbone: its features cached (the heads train
on them) against running the backbone in every step.

An SRDC epoch is `max(source, target batches)` training steps, the
inference pass over every source and target example, and the per-epoch
clustering. Both ways are timed here, on Office-31 A->W sizes by default:

- backbone: `SRDCModel` with the frozen backbone in front, on images. Each
  step pushes `--batch_size` source and target images through it, and so
  does the per-epoch pass over every image.
- cached: `SRDCModel` without a backbone, on the backbone's features (what
  `--freeze_backbone` does, see `srdc_tf.data.feature_cache`). Computing
  the cache is one backbone pass over every image, once per run (or never,
  when `--feature_cache_dir` already holds it).

The training steps are the real `train_step` through `model.fit`, timed on
a repeated synthetic batch (median of `--steps`); the inference pass is
timed on `--inference_batches` batches and scaled to the domain sizes; the
clustering is `compute_epoch_state` on features of the run's sizes. No
image decoding is timed, which favours the backbone side (see
input_pipeline.py for its cost).

  python benchmarks/feature_cache.py \
      --weights=/work/shared/weights/mobilenet_v2_imagenet_notop.weights.h5
"""

import math

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "mobilenet_v2", ["resnet50", "mobilenet_v2"],
                  "The frozen backbone.")
flags.DEFINE_string("weights", None, "Backbone weights file (optional: the "
                    "speed does not depend on the values).")
flags.DEFINE_integer("image_size", 224, "Input side.")
flags.DEFINE_integer("source_size", 2817, "Source examples (Office-31 "
                     "Amazon).")
flags.DEFINE_integer("target_size", 795, "Target examples (Office-31 "
                     "Webcam).")
flags.DEFINE_integer("num_classes", 31, "K.")
flags.DEFINE_integer("batch_size", 64, "Training batch per domain.")
flags.DEFINE_integer("eval_batch", 128, "Batch of the per-epoch pass.")
flags.DEFINE_integer("warmup_steps", 1, "Untimed steps first.")
flags.DEFINE_integer("steps", 3, "Timed training steps (median).")
flags.DEFINE_integer("inference_batches", 2, "Timed per-epoch-pass batches "
                     "(median).")


def _model(backbone, input_shape, source_size, target_size):
  import keras  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import srdc_model  # pylint: disable=g-import-not-at-top
  model = srdc_model.SRDCModel(
      backbone, num_classes=FLAGS.num_classes, input_shape=input_shape,
      num_source_examples=source_size, num_target_examples=target_size)
  model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                jit_compile=False)
  model.penalty.assign(0.5)
  model.q_mix.assign(1.0)
  return model


def _epoch(model, input_shape, steps_per_epoch, eval_batches):
  """Seconds of the training steps and of the per-epoch pass."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  batch = benchlib.synthetic_train_batch(input_shape, FLAGS.batch_size,
                                         FLAGS.num_classes)
  _, step = benchlib.train_step_seconds(model, batch, FLAGS.warmup_steps,
                                        FLAGS.steps)
  inputs = tf.constant(benchlib.synthetic_train_batch(
      input_shape, FLAGS.eval_batch, FLAGS.num_classes)["source_image"])
  embed = tf.function(lambda x: model.embed(x, training=False))
  per_batch = benchlib.call_seconds(
      lambda: float(tf.reduce_sum(embed(inputs)[2])), 1,
      FLAGS.inference_batches)
  return step, step * steps_per_epoch, per_batch * eval_batches


def _clustering_seconds(feature_dim):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from srdc_tf import clustering  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  k = FLAGS.num_classes

  def features(n, d):
    return rng.standard_normal((n, d), dtype=np.float32)

  args = (features(FLAGS.source_size, feature_dim),
          features(FLAGS.source_size, 512),
          rng.integers(0, k, FLAGS.source_size).astype(np.int32),
          features(FLAGS.target_size, feature_dim),
          features(FLAGS.target_size, 512),
          rng.integers(0, k, FLAGS.target_size).astype(np.int32))
  return benchlib.call_seconds(
      lambda: clustering.compute_epoch_state(*args, k, first_epoch=False),
      1, 3)


def main(argv):
  del argv
  report = benchlib.Report(
      f"Frozen {FLAGS.backbone} at {FLAGS.image_size}: feature cache vs "
      "backbone in every step")
  from srdc_tf.models import backbones  # pylint: disable=g-import-not-at-top
  shape = (FLAGS.image_size, FLAGS.image_size, 3)
  backbone = backbones.build_backbone(FLAGS.backbone, shape,
                                      weights=FLAGS.weights, trainable=False)
  feature_dim = int(backbone.output.shape[-1])
  source, target = FLAGS.source_size, FLAGS.target_size
  steps_per_epoch = max(math.ceil(source / FLAGS.batch_size),
                        math.ceil(target / FLAGS.batch_size))
  eval_batches = (math.ceil(source / FLAGS.eval_batch)
                  + math.ceil(target / FLAGS.eval_batch))
  clustering_s = _clustering_seconds(feature_dim)
  rows = {}
  for name, model_backbone, input_shape in (
      ("backbone in every step", backbone, shape),
      ("cached features", None, (feature_dim,))):
    model = _model(model_backbone, input_shape, source, target)
    step, train_s, pass_s = _epoch(model, input_shape, steps_per_epoch,
                                   eval_batches)
    rows[name] = [name, step, train_s, pass_s, clustering_s,
                  train_s + pass_s + clustering_s]
    print(f"{name}: step {step:.4f} s, epoch {rows[name][-1]:.2f} s",
          flush=True)
  slow = rows["backbone in every step"][-1]
  fast = rows["cached features"][-1]
  for row in rows.values():
    row.append(f"{slow / row[-1]:.0f}x" if row[-1] != slow else "1x")
  cache_s = rows["backbone in every step"][3]  # One backbone pass.
  report.table(
      ["", "train step s", f"{steps_per_epoch} steps s", "per-epoch pass s",
       "clustering s", "epoch s", "epoch cost ratio"],
      list(rows.values()),
      caption=f"{source} source + {target} target examples, batch "
      f"{FLAGS.batch_size} + {FLAGS.batch_size}, per-epoch pass in batches "
      f"of {FLAGS.eval_batch}; feature dim {feature_dim}.")
  report.table(
      ["building the cache (once) s", "saved per epoch s",
       "pays off after (epochs)"],
      [[cache_s, slow - fast, f"{cache_s / (slow - fast):.2f}"]])
  report.print()


if __name__ == "__main__":
  app.run(main)
