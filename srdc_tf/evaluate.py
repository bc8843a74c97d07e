r"""Scores a trained model on a labelled target domain.

  python -m srdc_tf.evaluate --saved_model=saved_models/default/1 \
      --target=synthetic:target --output_dir=runs/default/evaluation
  python -m srdc_tf.evaluate --model_dir=runs/default \
      --target=synthetic:target --output_dir=runs/default/evaluation

Reports top-1 accuracy, mean per-class accuracy and the confusion matrix:
printed, and as CSV files (summary.csv, per_class.csv,
confusion_matrix.csv) in --output_dir.
"""

import os

from absl import app
from absl import flags

from srdc_tf import cli
from srdc_tf import data_flags

FLAGS = flags.FLAGS

flags.DEFINE_string("saved_model", None, "SavedModel version folder to "
                    "evaluate, e.g. saved_models/<name>/<N>.")
flags.DEFINE_string("model_dir", None, "Training run directory whose "
                    "model.keras to evaluate (instead of --saved_model).")
flags.DEFINE_string("target", None, "Spec of the labelled domain to score "
                    "on (as --target of srdc_tf.train).")
flags.DEFINE_string("output_dir", None, "Where the CSV files go.")
data_flags.define_data_location_flags()
flags.DEFINE_string("list_root", None, "Root of the paths in an image list "
                    "(default: the list's folder).")
flags.DEFINE_integer("batch_size", 128, "Examples per inference step.")
flags.DEFINE_integer("synthetic_examples_per_class", None, "For synthetic "
                     "specs: images per class (as in training; unset: the "
                     "data source's default).")
flags.DEFINE_integer("seed", None, "For generated data: the seed used in "
                     "training (unset: the data source's default).")

flags.mark_flags_as_required(["target", "output_dir"])


def _validate():
  if bool(FLAGS.saved_model) == bool(FLAGS.model_dir):
    raise app.UsageError(
        "give exactly one of --saved_model and --model_dir, got "
        f"--saved_model={FLAGS.saved_model!r} --model_dir={FLAGS.model_dir!r}")
  if FLAGS.batch_size <= 0:
    raise app.UsageError(f"--batch_size must be > 0, got {FLAGS.batch_size}")
  model = FLAGS.saved_model or FLAGS.model_dir
  if not os.path.isdir(model):
    flag = "saved_model" if FLAGS.saved_model else "model_dir"
    raise app.UsageError(f"--{flag}={model!r} is not a folder")
  if FLAGS.saved_model and not os.path.isfile(
      os.path.join(FLAGS.saved_model, "saved_model.pb")):
    raise app.UsageError(
        f"--saved_model={FLAGS.saved_model!r} holds no saved_model.pb: give "
        "a version folder, e.g. saved_models/<name>/<N>")
  cli.check_output_folder("output_dir", FLAGS.output_dir)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  _validate()
  # Imported after flag parsing so that --help and flag errors are instant.
  from srdc_tf import evaluation
  from srdc_tf import run_files
  from srdc_tf.data import sources

  # Only the options given are passed on, so that every spec kind
  # load_domain knows keeps its own defaults.
  options = {name: FLAGS[name].value
             for name in ("synthetic_examples_per_class", "seed",
                          "data_root", "list_root", "tfds_data_dir")
             if FLAGS[name].value is not None}
  try:
    if FLAGS.model_dir:  # A damaged model is named before the data loads.
      run_files.check_model_file(FLAGS.model_dir)
      run_files.read_class_names(FLAGS.model_dir)
      run_files.read_transform(FLAGS.model_dir)
    domain = sources.load_domain(FLAGS.target, **options)
    if FLAGS.saved_model:
      predictions = evaluation.predict_saved_model(FLAGS.saved_model, domain,
                                                   FLAGS.batch_size)
    else:
      predictions = evaluation.predict_keras_model(FLAGS.model_dir, domain,
                                                   FLAGS.batch_size)
  except (ValueError, OSError) as error:
    raise app.UsageError(str(error)) from error
  report = evaluation.build_report(predictions)
  report.summary.insert(0, "model", FLAGS.saved_model or FLAGS.model_dir)
  report.summary.insert(1, "target", FLAGS.target)
  evaluation.write_report(report, FLAGS.output_dir)
  print(evaluation.format_report(report))


def cli_main():
  """The `srdc-evaluate` console script."""
  cli.run(main, doc=__doc__)


if __name__ == "__main__":
  cli_main()
