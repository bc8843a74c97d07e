r"""Does a run's model read the augmentation's borders instead of the image?

Translation and rotation in training uncover pixels that `--augment_fill`
fills: black (`zeros`) or the image mirrored about its edge (`reflect`).
Black borders are neutral on a black background (MNIST) but, on textured
or coloured targets, a feature of the augmented target images that the
un-augmented ones lack, which target clustering can learn in place of the
content. This shifts the first --count images of the run's scored target
by the largest translation of its transform, in the 8 directions and not
at all, fills the uncovered pixels both ways, and prints per view the
label-free scores of the model's predictions (mean entropy, largest class
share) and the fraction of images whose predicted class differs from the
un-augmented view's. A model that learnt the borders is confident and
herds one class on the zero-filled views and changes its mind with the
direction of the shift; the reflect-filled views show what the shift alone
does. Target accuracy is printed last, for reference only: the diagnosis
needs no label.

  python benchmarks/border_diagnosis.py --run_dir=runs/hard_shift/mnist2textured/seed0 \
    --tfds_data_dir=../shared/data/tfds
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

import benchlib  # noqa: F401  Puts the repository on sys.path.
from srdc_tf import data_flags
from srdc_tf import scores as scores_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run's folder (model.keras "
                    "and run_info.json).")
data_flags.define_data_location_flags()
flags.DEFINE_integer("count", 2000, "Target images to shift.")
flags.DEFINE_integer("shift", None, "Shift in pixels (default: the run's "
                     "--random_translate).")

FILLS = ("zeros", "reflect")
DIRECTIONS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def shifted(images, dy, dx, fill):
  """`images` moved by `(dy, dx)` pixels, the uncovered pixels filled.

  Args:
    images: `[N, H, W, C]` array.
    dy: rows to move down (negative: up), `|dy| <= H`.
    dx: columns to move right (negative: left), `|dx| <= W`.
    fill: "zeros", or "reflect" (the image mirrored about its edge,
      `d c b a | a b c d`, as `--augment_fill=reflect`).

  Returns:
    An array of the shape and dtype of `images`.
  """
  if fill not in FILLS:
    raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
  images = np.asarray(images)
  _, height, width, _ = images.shape
  pad_y, pad_x = abs(dy), abs(dx)
  if pad_y > height or pad_x > width:
    raise ValueError(f"shift ({dy}, {dx}) is larger than the images "
                     f"({height}x{width})")
  padding = ((0, 0), (pad_y, pad_y), (pad_x, pad_x), (0, 0))
  padded = (np.pad(images, padding) if fill == "zeros"
            else np.pad(images, padding, mode="symmetric"))
  top, left = pad_y - dy, pad_x - dx
  return padded[:, top:top + height, left:left + width]


def view_scores(probs, reference_predictions):
  """Label-free scores of one view's `[N, K]` softmax outputs: mean
  `entropy`, `largest_class_share`, and `changed`, the fraction of samples
  whose predicted class differs from `reference_predictions`."""
  probs = np.asarray(probs, np.float64)
  predictions = probs.argmax(axis=1)
  return {"entropy": scores_lib.mean_entropy(probs),
          "largest_class_share": scores_lib.largest_class_share(
              predictions, probs.shape[1]),
          "changed": float(np.mean(predictions != reference_predictions))}


def main(argv):
  del argv
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import sources  # pylint: disable=g-import-not-at-top
  from srdc_tf.models import srdc_model  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

  with open(os.path.join(FLAGS.run_dir, "run_info.json")) as f:
    settings = json.load(f)["settings"]
  model = keras.models.load_model(
      os.path.join(FLAGS.run_dir, "model.keras"), compile=False)
  domain = sources.load_domain(
      settings["target_eval"] or settings["target"],
      data_root=FLAGS.data_root, tfds_data_dir=FLAGS.tfds_data_dir)
  if domain.images is None or domain.images.ndim != 4:
    raise app.UsageError("the run's target is not an in-memory image set")
  images = domain.images[:FLAGS.count].astype(np.float32)
  labels = domain.labels[:FLAGS.count]
  if images.shape[-1] != settings["channels"]:
    images = np.repeat(images, settings["channels"], axis=-1)
  shift = FLAGS.shift if FLAGS.shift is not None else settings[
      "random_translate"]

  def probs_of(batch):
    return tf.nn.softmax(model.predict(batch, batch_size=500, verbose=0)
                         ).numpy()

  clean = probs_of(images)
  reference = clean.argmax(axis=1)
  rows = [("un-augmented", "-", view_scores(clean, reference), clean)]
  for fill in FILLS:
    for dy, dx in DIRECTIONS:
      if (dy, dx) == (0, 0):
        continue
      probs = probs_of(shifted(images, dy * shift, dx * shift, fill))
      rows.append((fill, f"({dy * shift:+d}, {dx * shift:+d})",
                   view_scores(probs, reference), probs))
  print(f"{FLAGS.run_dir}: {len(images)} target images, shift {shift}")
  print("| fill | shift (rows, cols) | entropy | largest class share | "
        "prediction changed | accuracy (reference only) |")
  print("|---|---|---|---|---|---|")
  for fill, where, values, probs in rows:
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    print(f"| {fill} | {where} | {values['entropy']:.3f} | "
          f"{values['largest_class_share']:.3f} | {values['changed']:.3f} | "
          f"{100 * accuracy:.1f} |")


if __name__ == "__main__":
  flags.mark_flags_as_required(["run_dir"])
  app.run(main)
