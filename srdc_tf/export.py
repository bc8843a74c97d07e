r"""Exports a training run's model as a versioned SavedModel for TF Serving.

  python -m srdc_tf.export --model_dir=runs/default \
      --export_dir=saved_models/default

Reads `<model_dir>/model.keras`, `classes.json` and `transform.json` (all
written by `runner.run`) and writes `<export_dir>/<next version>/`; an
existing version is never touched. Prints the path of the new version.
"""

import os

from absl import app
from absl import flags

from srdc_tf import cli

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "Training run directory holding "
                    "model.keras and classes.json.")
flags.DEFINE_string("export_dir", None, "Export base, e.g. "
                    "saved_models/<name>; the version goes to "
                    "<export_dir>/<N>/.")

flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported after flag parsing so that --help and flag errors are instant.
  if not os.path.isdir(FLAGS.model_dir):
    raise app.UsageError(f"--model_dir={FLAGS.model_dir!r} is not a folder")
  cli.check_output_folder("export_dir", FLAGS.export_dir)
  from srdc_tf import run_files
  from srdc_tf import serving

  try:
    run_files.check_model_file(FLAGS.model_dir)
    class_names = run_files.read_class_names(FLAGS.model_dir)
    # Runs from before transform.json resize straight to the model's size.
    transform = run_files.read_transform(FLAGS.model_dir)
    model = run_files.load_model(FLAGS.model_dir)
    # A run on cached features saved its frozen backbone beside the heads.
    backbone = run_files.load_backbone(FLAGS.model_dir)
  except (ValueError, OSError) as error:
    raise app.UsageError(str(error)) from error
  print(serving.export_saved_model(model, FLAGS.export_dir, class_names,
                                   transform=transform, backbone=backbone))


def cli_main():
  """The `srdc-export` console script."""
  cli.run(main, doc=__doc__)


if __name__ == "__main__":
  cli_main()
