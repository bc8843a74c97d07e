"""Builds a run from its settings and trains it: data, model, callbacks, fit.

Data flows one way: flags -> `RunSettings` -> datasets + model + callbacks
-> `fit` -> metrics, checkpoints, TensorBoard, SavedModel. This module only
wires the parts; each lives in its own module:

- `callbacks.training_callbacks`: every callback of `fit`, in order;
- `resumable_fit`: `fit` from a backup's step, mid-epoch too;
- `kept_model`: the epoch kept, the collapse guard, its fallback;
- `run_outputs`: model.keras, its files and the SavedModel export;
- `run_directory.finished_result`: a finished run's result, read back.

A run backs itself up into `<model_dir>/backup` as it trains and, started
again with the same settings after it was killed, resumes at the step it
had reached (`callbacks.backup`). Under a multi-worker strategy only the
chief writes into `model_dir` and the export folder.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf

from srdc_tf import collapse_guard
from srdc_tf import console
from srdc_tf import distribute
from srdc_tf import evaluation
from srdc_tf import kept_model
from srdc_tf import resumable_fit
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import run_outputs
from srdc_tf.callbacks import training_callbacks
from srdc_tf.data import pipeline


def run(settings, data, strategy, baseline_dir=None):
  """Trains one model and returns its summary.

  Args:
    settings: a `RunSettings`.
    data: the `RunData` (loaded once, shared by a run and its baseline).
    strategy: a `tf.distribute.Strategy`.
    baseline_dir: the finished source-only baseline's run directory, or
      None: its target predictions give `score_baseline_agreement`, the
      collapse guard compares with its scores, and `--on_collapse=fallback`
      may export its weights.

  Returns:
    A dict with the final `target_accuracy`, `seconds` of training, the
    `export` path (or None), `epochs`, the step the run `resumed_from` (0
    when it started afresh) and the number of `skipped_images` per domain;
    the label-free `scores` of the model kept, the epoch kept
    (`selected_epoch`, `selection_score`, `select_by`), every epoch's
    `epoch_scores`, the collapse guard's `warnings`, and which model was
    `exported` (the run's method, or "source_only" after a fallback).

  Raises:
    divergence.TrainingDivergedError: the loss or the weights became NaN or
      infinite; the last good backup is left in place.
  """
  keras.utils.set_random_seed(settings.seed)
  if settings.deterministic:
    tf.config.experimental.enable_op_determinism()
  chief = distribute.is_chief(strategy)
  os.makedirs(settings.model_dir, exist_ok=True)
  transform = None if data.frozen_backbone is not None else settings.transform
  batch = settings.batch_size
  train = lambda start_step: pipeline.train_dataset(  # pylint: disable=g-long-lambda
      data.source, data.target, batch, transform, seed=settings.seed,
      start_step=start_step, epoch_structure=settings.epoch_structure)
  steps = settings.steps_per_epoch or pipeline.steps_per_epoch(
      data.source, data.target, batch, settings.epoch_structure)
  eval_batch = max(batch, 128)
  target_eval = pipeline.eval_dataset(data.target_eval, eval_batch,
                                      transform).map(lambda x, y, i: (x, y))
  with strategy.scope():
    model = run_data.build_model(settings, data)
    model.compile(
        optimizer=keras.optimizers.SGD(settings.lr,
                                       momentum=settings.momentum),
        jit_compile=False)  # XLA halves CPU training speed.
  baseline = (collapse_guard.read_baseline(baseline_dir) if baseline_dir
              else None)
  parts = training_callbacks.training_callbacks(
      settings, data, strategy, steps, eval_batch, transform, baseline)
  resume = parts.backup.restore(model)
  console.banner(
      f"{'Source-only baseline' if settings.source_only else 'SRDC'}: "
      f"{settings.epochs} epochs of {steps} steps into {settings.model_dir}"
      + (f", resumed at step {resume.global_step}" if resume else ""))
  start = time.time()
  # Keras' own line of every logged value only at --verbose=3 and above.
  history = resumable_fit.fit(
      model, train, target_eval, steps, settings.epochs, resume,
      parts.epoch_state, parts.callbacks, 2 if settings.verbose >= 3 else 0)
  seconds = time.time() - start
  if history.get("val_target_accuracy"):
    accuracy = float(history["val_target_accuracy"][-1])
  else:  # Resumed after the last epoch: nothing was left to train.
    accuracy = float(model.evaluate(target_eval, verbose=0,
                                    return_dict=True)["target_accuracy"])
  selected, outcome, kept = kept_model.keep(settings, data, model, parts,
                                            baseline, accuracy)
  export = run_outputs.save_outputs(settings, data, strategy, model)
  skipped = run_data.skipped_images(data)
  result = {"target_accuracy": kept.accuracy,
            "per_class_accuracy": evaluation.per_class_accuracy(
                model, data.target_eval, eval_batch, transform),
            "seconds": seconds, "export": export, "epochs": settings.epochs,
            "task": settings.task_name, "method": settings.method,
            "seed": settings.seed,
            "resumed_from": resume.global_step if resume else 0,
            "skipped_images": {name: len(items)
                               for name, items in skipped.items()}}
  result.update(kept_model.selection_record(settings, parts, selected,
                                            kept.scores, outcome))
  if chief:
    # Before run_info.json, which marks the run finished.
    run_files.save_predictions(
        os.path.join(settings.model_dir, collapse_guard.PREDICTIONS_FILE),
        kept.predictions)
    run_files.write_json(
        os.path.join(settings.model_dir, run_directory.RUN_INFO_FILE),
        {**result, "settings": dataclasses.asdict(settings),
         "skipped_image_files": {
             name: [dataclasses.asdict(item) for item in items]
             for name, items in skipped.items()}})
  # Finished and written: a restart starts over instead of resuming.
  parts.backup.remove()
  return result
