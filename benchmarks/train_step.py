r"""Training-step and inference throughput of SRDCModel, in images/s.

The training step is the real `SRDCModel.train_step`, run by `model.fit`
on a synthetic batch (source and target images, labels, indices) that
repeats, so no input pipeline is timed. Each step takes `--batch_size`
source plus `--batch_size` target images: images/s counts both. After
`--warmup_steps` (the first traces the step), the precisions take turns for
`--rounds` rounds of `--steps` steps (the machine may be shared: its load
then changes alike for all); the figures are the median and the fastest
step. Inference is `model.embed(training=False)` (what the per-epoch pass
runs) as a tf.function on `--inference_batch` images.

  python benchmarks/train_step.py --backbone=resnet50 --image_size=224 \
      --batch_size=16 --precisions=float32,mixed_bfloat16
  python benchmarks/train_step.py --strategy=mirrored --num_cpu_devices=2
  python benchmarks/train_step.py --precisions=float32 \
      --batch_norms=fused,keras --torch_python=.torch-venv/bin/python \
      --torch_reference=torch_reference_step.py
"""

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "mobilenet_v2", "lenet"],
                  "Backbone (random weights: speed does not depend on them).")
flags.DEFINE_integer("image_size", 224, "Side of the square input images.")
flags.DEFINE_integer("batch_size", 16, "Images per domain per step (the "
                     "step sees twice this many).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"],
                  "Precisions to compare (float32, mixed_bfloat16).")
flags.DEFINE_list("batch_norms", ["fused"], "BatchNorm kernels to compare "
                  "(fused: TensorFlow's fused kernel, the default of "
                  "srdc_tf.train; keras: Keras' own ops).")
flags.DEFINE_string("torch_reference", None, "A PyTorch script of the same "
                    "step that takes --batch_size, --image_size, --steps and "
                    "--threads and prints 'images/s median step: X; fastest "
                    "step: Y' (e.g. one written against the released code): "
                    "run once per round, in turn with the variants, and "
                    "compared with the first variant.")
flags.DEFINE_string("torch_python", None, "The Python that runs "
                    "--torch_reference (a venv with torch; default: this "
                    "one).")
flags.DEFINE_integer("threads", 2, "Threads of the --torch_reference runs "
                     "(TensorFlow uses its default, every core).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored"],
                  "Distribution strategy.")
flags.DEFINE_integer("num_cpu_devices", 2, "Logical CPUs of --strategy="
                     "mirrored.")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps first.")
flags.DEFINE_integer("steps", 2, "Timed steps per round.")
flags.DEFINE_integer("rounds", 4, "Rounds; in each, every precision runs "
                     "--steps steps and --inference_steps batches.")
flags.DEFINE_integer("inference_batch", 32, "Batch of the inference timing.")
flags.DEFINE_integer("inference_steps", 2, "Timed inference batches per "
                     "round.")
flags.DEFINE_integer("num_classes", 31, "K.")


def _model(precision, batch_norm, strategy):
  import keras  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import backbones  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import precision as precision_lib  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import srdc_model  # pylint: disable=g-import-not-at-top
  channels = 1 if FLAGS.backbone == "lenet" else 3
  shape = (FLAGS.image_size, FLAGS.image_size, channels)
  with strategy.scope(), precision_lib.dtype_policy(precision):
    model = srdc_model.SRDCModel(
        backbones.build_backbone(FLAGS.backbone, shape,
                                 fused_batch_norm=batch_norm == "fused"),
        num_classes=FLAGS.num_classes, input_shape=shape,
        num_source_examples=1024, num_target_examples=1024,
        backbone_lr_multiplier=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  jit_compile=False)
  model.penalty.assign(0.5)  # Every loss term on, as after epoch 0.
  model.q_mix.assign(1.0)
  return model, shape


def _inference_seconds(model, shape):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = tf.constant(benchlib.synthetic_train_batch(
      shape, FLAGS.inference_batch, FLAGS.num_classes)["source_image"])
  embed = tf.function(lambda x: model.embed(x, training=False))
  return benchlib.call_seconds(
      lambda: float(tf.reduce_sum(embed(images)[2])), 1,
      FLAGS.inference_steps)


def _torch_rates():
  """`(median, fastest)` images/s of one --torch_reference run."""
  import re  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  result = subprocess.run(
      [FLAGS.torch_python or sys.executable, FLAGS.torch_reference,
       f"--batch_size={FLAGS.batch_size}", f"--image_size={FLAGS.image_size}",
       f"--steps={FLAGS.steps + 2}", f"--threads={FLAGS.threads}"],
      capture_output=True, text=True, check=False)
  found = re.search(r"median step: ([\d.]+); fastest step: ([\d.]+)",
                    result.stdout)
  if result.returncode or not found:
    raise RuntimeError(f"--torch_reference={FLAGS.torch_reference!r} failed "
                       f"(status {result.returncode}): "
                       f"{(result.stderr or result.stdout)[-800:]}")
  return float(found.group(1)), float(found.group(2))


def main(argv):
  del argv
  if FLAGS.torch_reference and FLAGS.backbone != "resnet50":
    raise app.UsageError(f"--torch_reference times a ResNet-50 step: give "
                         f"--backbone=resnet50, not {FLAGS.backbone!r}")
  report = benchlib.Report(
      f"Training step and inference: {FLAGS.backbone} at "
      f"{FLAGS.image_size}, strategy {FLAGS.strategy}")
  from srdc_tf import distribute  # pylint: disable=g-import-not-at-top
  strategy = distribute.create_strategy(
      FLAGS.strategy,
      FLAGS.num_cpu_devices if FLAGS.strategy == "mirrored" else 0)
  models, first, steps, inference = {}, {}, {}, {}
  variants = [(precision, batch_norm) for precision in FLAGS.precisions
              for batch_norm in FLAGS.batch_norms]
  for variant in variants:
    models[variant], shape = _model(*variant, strategy)
    batch = benchlib.synthetic_train_batch(shape, FLAGS.batch_size,
                                           FLAGS.num_classes)  # The same.
    warmup = benchlib.train_step_durations(models[variant], batch,
                                           FLAGS.warmup_steps)
    first[variant], steps[variant], inference[variant] = warmup[0], [], []
  # Variants take turns, round after round, so that a change in the load
  # of a shared machine hits them alike.
  torch_runs = []
  for round_ in range(FLAGS.rounds):
    if FLAGS.torch_reference:
      torch_runs.append(_torch_rates())
      print(f"round {round_}, torch reference: {torch_runs[-1][0]:.2f} "
            f"images/s", flush=True)
    for variant, model in models.items():
      steps[variant] += benchlib.train_step_durations(model, batch,
                                                      FLAGS.steps)
      inference[variant].append(_inference_seconds(model, shape))
      print(f"round {round_}, {'/'.join(variant)}: step "
            f"{benchlib.median(steps[variant]):.3f} s", flush=True)
  rows, baseline = [], None
  for variant in variants:
    step, best = benchlib.median(steps[variant]), min(steps[variant])
    train_rate = 2 * FLAGS.batch_size / step
    best_rate = 2 * FLAGS.batch_size / best
    infer_rate = FLAGS.inference_batch / benchlib.median(inference[variant])
    baseline = baseline or (train_rate, best_rate, infer_rate)
    rows.append([variant[0], variant[1],
                 f"{FLAGS.batch_size} + {FLAGS.batch_size}",
                 f"{strategy.num_replicas_in_sync}", step, train_rate,
                 f"{train_rate / baseline[0]:.2f}x", best_rate,
                 f"{best_rate / baseline[1]:.2f}x", first[variant],
                 infer_rate, f"{infer_rate / baseline[2]:.2f}x"])
  if torch_runs:
    median_rate = benchlib.median([run[0] for run in torch_runs])
    best_rate = max(run[1] for run in torch_runs)
    rows.append(["PyTorch reference", "-",
                 f"{FLAGS.batch_size} + {FLAGS.batch_size}", "1",
                 2 * FLAGS.batch_size / median_rate, median_rate,
                 f"{median_rate / baseline[0]:.2f}x", best_rate,
                 f"{best_rate / baseline[1]:.2f}x", "-", "-", "-"])
    print(f"SRDC-TF ({'/'.join(variants[0])}) against the PyTorch "
          f"reference: {baseline[0] / median_rate:.2f}x (median steps), "
          f"{baseline[1] / best_rate:.2f}x (fastest steps)", flush=True)
  report.table(
      ["precision", "batch norm", "batch (source + target)", "replicas", "step s (median)",
       "train images/s", "vs row 1", "best step images/s", "vs row 1",
       "first step s (trace)", "inference images/s", "vs row 1"], rows,
      caption=f"Median (and fastest) of {FLAGS.rounds} x {FLAGS.steps} "
      f"steps after {FLAGS.warmup_steps} warm-up steps, the variants "
      f"taking turns; inference: median of {FLAGS.rounds} x "
      f"{FLAGS.inference_steps} batches of {FLAGS.inference_batch}. On a "
      "shared machine other processes only ever add time: the fastest step "
      "is the better estimate of what the machine can do.")
  report.print()


if __name__ == "__main__":
  app.run(main)
