r"""Training a backbone's top on cached activations against the whole network.

Both models train the same part, the backbone's last `--trainable_layers`
layers with fc1, fc2 and the centres (`models.cut`): one on the activations
at the cut (what `--trainable_layers` trains on, from the cache), one on
raw images through the frozen layers below (`--cached_views=0`). Each step
is the real `SRDCModel.train_step` on a synthetic batch that repeats;
the two take turns for `--rounds` rounds. Also printed: the bytes of cache
per image, per view and for the default number of views.

  python benchmarks/cached_top_step.py --backbone=mobilenet_v2 \
      --trainable_layers=12 --image_size=224 --batch_size=32
"""

from absl import app
from absl import flags

import benchlib

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "mobilenet_v2", ["resnet50", "mobilenet_v2"],
                  "Backbone (random weights: speed does not depend on them).")
flags.DEFINE_integer("trainable_layers", 12, "Last layers trained (12: "
                     "MobileNetV2's last block; 11: ResNet-50's).")
flags.DEFINE_integer("image_size", 224, "Side of the square input images.")
flags.DEFINE_integer("batch_size", 32, "Images per domain per step.")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps first.")
flags.DEFINE_integer("whole_steps", 2, "Timed steps of the whole network "
                     "per round.")
flags.DEFINE_integer("top_steps", 20, "Timed steps of the cached top per "
                     "round.")
flags.DEFINE_integer("rounds", 3, "Rounds of both.")
flags.DEFINE_integer("num_classes", 31, "K.")


def _models():
  import keras  # pylint: disable=g-import-not-at-top
  from srdc_tf import run_settings  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import cut  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import srdc_model  # pylint: disable=g-import-not-at-top
  shape = (FLAGS.image_size, FLAGS.image_size, 3)
  split = cut.split_backbone(FLAGS.backbone, shape,
                             trainable_layers=FLAGS.trainable_layers)
  cut_shape = tuple(int(d) for d in split.top.input.shape[1:])
  models = {}
  for name, backbone, input_shape in (
      ("cached top", split.top, cut_shape),
      ("whole network", cut.join(split.bottom, split.top), shape)):
    model = srdc_model.SRDCModel(
        backbone, num_classes=FLAGS.num_classes, input_shape=input_shape,
        num_source_examples=1024, num_target_examples=1024)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  jit_compile=False)
    model.penalty.assign(0.5)  # Every loss term on, as after epoch 0.
    model.q_mix.assign(1.0)
    trainable = sum(int(v.numpy().size) for v in model.trainable_variables)
    models[name] = (model, input_shape, trainable)
  return models, split, cut_shape, run_settings.DEFAULT_CACHED_VIEWS


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  report = benchlib.Report(
      f"Cached top against whole network: {FLAGS.backbone} at "
      f"{FLAGS.image_size}, last {FLAGS.trainable_layers} layers trained")
  models, split, cut_shape, views = _models()
  steps = {"cached top": FLAGS.top_steps, "whole network": FLAGS.whole_steps}
  batches, durations = {}, {}
  for name, (model, shape, _) in models.items():
    batches[name] = benchlib.synthetic_train_batch(shape, FLAGS.batch_size,
                                                   FLAGS.num_classes)
    benchlib.train_step_durations(model, batches[name], FLAGS.warmup_steps)
    durations[name] = []
  for round_ in range(FLAGS.rounds):
    for name, (model, _, _) in models.items():
      durations[name] += benchlib.train_step_durations(model, batches[name],
                                                       steps[name])
      print(f"round {round_}, {name}: step "
            f"{benchlib.median(durations[name]):.4f} s", flush=True)
  rates = {name: 2 * FLAGS.batch_size / benchlib.median(times)
           for name, times in durations.items()}
  best = {name: 2 * FLAGS.batch_size / min(times)
          for name, times in durations.items()}
  rows = [[name, f"{shape}", trainable, rates[name],
           f"{rates[name] / rates['whole network']:.1f}x", best[name],
           f"{best[name] / best['whole network']:.1f}x"]
          for name, (_, shape, trainable) in models.items()]
  report.table(["step", "input", "trainable parameters", "train images/s",
                "vs whole", "best step images/s", "vs whole"], rows,
               caption=f"Cut before {split.cut_layer!r}. Median (and "
               f"fastest) of {FLAGS.rounds} rounds of {FLAGS.top_steps} "
               f"cached-top and {FLAGS.whole_steps} whole-network steps of "
               f"{FLAGS.batch_size} + {FLAGS.batch_size} images, taking "
               "turns.")
  per_view = int(np.prod(cut_shape)) * 4
  report.table(["cache", "bytes per image"],
               [["one view (float32)", per_view],
                [f"{views} views (the default --cached_views)",
                 per_view * views]])
  report.print()


if __name__ == "__main__":
  app.run(main)
