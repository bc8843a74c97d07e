r"""Predicts the classes of a folder (or a list) of images into a CSV file.

  srdc-predict --model=saved_models/default/1 --input=photos/ \
      --output=predictions.csv
  python -m srdc_tf.predict --model=runs/default --input=images.txt \
      --output=predictions.csv --top_k=3

--model is an export version folder, an export base (its newest version)
or a training run directory. Writes one row per file: path, class_name,
probability, top1_class, top1_probability, ..., and `error`, which names
what is wrong with a file that could not be read or decoded (its other
columns empty). Files stream through in batches: memory stays constant and
rows are written as batches finish.
"""

import os

from absl import app
from absl import flags

from srdc_tf import cli

FLAGS = flags.FLAGS

flags.DEFINE_string("model", None, "Export version folder, export base "
                    "(newest version) or training run directory.")
flags.DEFINE_string("input", None, "Folder of images (searched "
                    "recursively) or a list file of image paths, one a line.")
flags.DEFINE_string("output", None, "CSV file written.")
flags.DEFINE_string("list_root", None, "Where the relative paths of an "
                    "--input list start (default: the list's folder).")
# Bounds are checked while parsing, before TensorFlow is imported.
flags.DEFINE_integer("top_k", 5, "Classes ranked in every row (at most "
                     "the model's classes).", lower_bound=1)
flags.DEFINE_integer("batch_size", 64, "Images per model call.",
                     lower_bound=1)
flags.DEFINE_boolean("fail_on_bad_images", False, "Stop with an error at "
                     "the first file that cannot be read or decoded "
                     "(default: list it in the CSV's error column and go "
                     "on).")

flags.mark_flags_as_required(["model", "input", "output"])

# How many bad files the closing message names.
_LISTED = 5


def _validate():
  if os.path.isdir(FLAGS.output):
    raise app.UsageError(f"--output={FLAGS.output!r} is a folder, not a file")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  _validate()
  # Imported after flag parsing so that --help and flag errors are instant.
  from srdc_tf import prediction  # pylint: disable=g-import-not-at-top
  from srdc_tf import predictor  # pylint: disable=g-import-not-at-top

  try:
    paths = prediction.list_inputs(FLAGS.input, FLAGS.list_root)
    model = predictor.load(FLAGS.model)
  except (ValueError, OSError) as error:
    raise app.UsageError(str(error)) from error
  print(f"Predicting {len(paths)} file(s) of {FLAGS.input} with "
        f"{model.path} ({len(model.class_names)} classes)", flush=True)
  try:
    predicted, bad = predictor.predict_to_csv(
        model, paths, FLAGS.output, FLAGS.top_k, FLAGS.batch_size,
        FLAGS.fail_on_bad_images)
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  print(f"Wrote {predicted} prediction(s) to {FLAGS.output}.")
  if bad:
    print(f"{len(bad)} file(s) could not be used; their rows name the "
          f"problem in the '{prediction.ERROR_COLUMN}' column:")
    for path, problem in bad[:_LISTED]:
      print(f"  {path}: {problem}")
    if len(bad) > _LISTED:
      print(f"  ... and {len(bad) - _LISTED} more")


def cli_main():
  """The `srdc-predict` console script."""
  cli.run(main, doc=__doc__)


if __name__ == "__main__":
  cli_main()
