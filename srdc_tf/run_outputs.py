"""What a finished run leaves behind for its user: model.keras and the
files beside it, a frozen backbone's model, the worker's weights and the
SavedModel export."""

import os

from srdc_tf import console
from srdc_tf import distribute
from srdc_tf import run_data
from srdc_tf import run_files
from srdc_tf import serving


def save_outputs(settings, data, strategy, model):
  """Writes model.keras, its run files, a frozen backbone's model, the
  worker's weights and the export.

  Args:
    settings: the run's `RunSettings`.
    data: its `RunData`.
    strategy: its `tf.distribute.Strategy` (only the chief writes
      `model_dir` and the export).
    model: the model kept, trained on whatever the run trained on.

  Returns:
    The export's path on the chief, else None (and None without
    `--export_dir`).
  """
  chief = distribute.is_chief(strategy)
  kept = run_data.model_to_keep(model, data)
  run_files.save_model(
      kept, os.path.join(settings.model_dir, run_files.MODEL_FILE), strategy)
  if chief:
    # What the export binary and evaluation need beside model.keras.
    run_files.write_run_files(settings.model_dir, data.source.class_names,
                              settings.transform)
  heads_only = kept.backbone is None
  if heads_only and data.frozen_backbone is not None:
    run_files.save_model(
        data.frozen_backbone,
        os.path.join(settings.model_dir, run_files.BACKBONE_FILE), strategy)
  if settings.worker_weights_dir:
    os.makedirs(settings.worker_weights_dir, exist_ok=True)
    model.save_weights(os.path.join(
        settings.worker_weights_dir,
        f"{distribute.worker_name(strategy)}.weights.h5"))
  if not settings.export_dir:
    return None
  console.banner(f"Export: a SavedModel version under {settings.export_dir}")
  with distribute.write_location(settings.export_dir, strategy) as base:
    export = serving.export_saved_model(
        kept, base, data.source.class_names, transform=settings.transform,
        backbone=data.frozen_backbone if heads_only else None)
  return export if chief else None
