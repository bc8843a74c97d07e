"""Builds a run from its settings and trains it: data, model, callbacks, fit.

Data flows one way: flags -> `RunSettings` -> datasets + model + callbacks
-> `fit` -> metrics, checkpoints, TensorBoard, SavedModel.

A run backs itself up into `<model_dir>/backup` as it trains and, started
again with the same settings after it was killed, resumes at the step it
had reached (`callbacks.backup`). Under a multi-worker strategy only the
chief writes into `model_dir` and the export folder.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from srdc_tf import callbacks as callbacks_lib
from srdc_tf import collapse_guard
from srdc_tf import console
from srdc_tf import distribute
from srdc_tf import metrics
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import scores as scores_lib
from srdc_tf import serving
from srdc_tf import write_guard
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import divergence
from srdc_tf.callbacks import epoch_summary
from srdc_tf.callbacks import label_free_scores
from srdc_tf.callbacks import model_selection
from srdc_tf.callbacks import run_logging
from srdc_tf.data import pipeline
from srdc_tf.models import cut
from srdc_tf.models import inference


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
  parts = _training_callbacks(settings, data, strategy, steps, eval_batch,
                              transform, baseline)
  resume = parts.backup.restore(model)
  console.banner(
      f"{'Source-only baseline' if settings.source_only else 'SRDC'}: "
      f"{settings.epochs} epochs of {steps} steps into {settings.model_dir}"
      + (f", resumed at step {resume.global_step}" if resume else ""))
  start = time.time()
  # Keras' own line of every logged value only at --verbose=3 and above.
  history = _fit(model, train, target_eval, steps, settings.epochs, resume,
                 parts.epoch_state, parts.callbacks,
                 2 if settings.verbose >= 3 else 0)
  seconds = time.time() - start
  if history.get("val_target_accuracy"):
    accuracy = float(history["val_target_accuracy"][-1])
  else:  # Resumed after the last epoch: nothing was left to train.
    accuracy = float(model.evaluate(target_eval, verbose=0,
                                    return_dict=True)["target_accuracy"])
  selected, outcome, kept = _select_and_guard(settings, data, model, parts,
                                              baseline, accuracy)
  export = _save_outputs(settings, data, strategy, model)
  skipped = _skipped_images(data)
  result = {"target_accuracy": kept.accuracy,
            "per_class_accuracy": _per_class_accuracy(
                model, data.target_eval, eval_batch, transform),
            "seconds": seconds, "export": export, "epochs": settings.epochs,
            "task": settings.task_name, "method": settings.method,
            "seed": settings.seed,
            "resumed_from": resume.global_step if resume else 0,
            "skipped_images": {name: len(items)
                               for name, items in skipped.items()}}
  result.update(_selection_record(settings, parts, selected, kept.scores,
                                  outcome))
  if chief:
    # Before run_info.json, which marks the run finished.
    _save_predictions(os.path.join(settings.model_dir,
                                   collapse_guard.PREDICTIONS_FILE),
                      kept.predictions)
    write_json(os.path.join(settings.model_dir, RUN_INFO_FILE),
               {**result, "settings": dataclasses.asdict(settings),
                "skipped_image_files": {
                    name: [dataclasses.asdict(item) for item in items]
                    for name, items in skipped.items()}})
  # Finished and written: a restart starts over instead of resuming.
  parts.backup.remove()
  return result


@dataclasses.dataclass(frozen=True)
class _KeptModel:
  """What the run hands over: its target accuracy, label-free scores and
  target predictions (the selected epoch's, or the baseline's after a
  fallback)."""
  accuracy: float
  scores: dict
  predictions: object


def _select_and_guard(settings, data, model, parts, baseline,
                      last_accuracy):
  """Restores the selected epoch's weights into `model`, runs the collapse
  guard and, after a fallback, loads the baseline's; returns the selection,
  the guard's outcome and a `_KeptModel`."""
  selected = parts.selector.finish(model, settings.epochs - 1)
  accuracy = selected.accuracy if selected.restored else last_accuracy
  outcome = collapse_guard.guard(
      settings.method, selected.scores, selected.epoch, parts.source_shares,
      settings.select_by, settings.on_collapse, baseline,
      epoch_scores=parts.label_scores.epoch_scores)
  if outcome.exported != collapse_guard.SOURCE_ONLY:
    return selected, outcome, _KeptModel(accuracy, selected.scores,
                                         selected.predictions)
  _load_baseline_weights(model, baseline, data)
  scores = parts.label_scores.compute(model)
  # The baseline has no pseudo-labels of its own to agree with.
  scores.pop(scores_lib.KMEANS_AGREEMENT, None)
  return selected, outcome, _KeptModel(baseline.target_accuracy, scores,
                                       parts.label_scores.last_predictions)


def _save_outputs(settings, data, strategy, model):
  """Writes model.keras, its run files, a frozen backbone's model, the
  worker's weights and the export; returns the export path (chief) or
  None."""
  chief = distribute.is_chief(strategy)
  kept = _model_to_keep(model, data)
  save_model(kept, os.path.join(settings.model_dir, run_files.MODEL_FILE),
             strategy)
  if chief:
    # What the export binary and evaluation need beside model.keras.
    run_files.write_run_files(settings.model_dir, data.source.class_names,
                              settings.transform)
  heads_only = kept.backbone is None
  if heads_only and data.frozen_backbone is not None:
    save_model(data.frozen_backbone,
               os.path.join(settings.model_dir, run_files.BACKBONE_FILE),
               strategy)
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


def _skipped_images(data):
  """The unreadable images skipped per domain (`data.source.skipped`...)."""
  skipped = {"source": list(data.source.skipped),
             "target": list(data.target.skipped)}
  if data.target_eval is not data.target:
    skipped["target_eval"] = list(data.target_eval.skipped)
  return skipped


def _selection_record(settings, parts, selected, kept_scores, outcome):
  """The summary's entries on the epoch kept, every epoch's label-free
  scores, the collapse guard's findings and which model was exported."""
  exported_baseline = outcome.exported == collapse_guard.SOURCE_ONLY
  record = {
      "select_by": selected.select_by, "selected_epoch": selected.epoch,
      "selection_score": selected.score,
      "selection_max_share": parts.selector.max_share,
      "herding_epoch": parts.selector.herding_epoch,
      "scores": kept_scores,
      "epoch_scores": [{"epoch": epoch, **values} for epoch, values in
                       sorted(parts.label_scores.epoch_scores.items())],
      "warnings": [finding.as_dict() for finding in outcome.findings],
      "exported": (collapse_guard.SOURCE_ONLY if exported_baseline
                   else settings.method)}
  if exported_baseline:
    record["adapted_target_accuracy"] = selected.accuracy
  return record


@dataclasses.dataclass(frozen=True)
class _TrainingCallbacks:
  """The callbacks of a run's `fit`, in order, and those the run reads
  after it."""
  callbacks: list
  epoch_state: object
  label_scores: object
  selector: object
  backup: object
  source_shares: object


def _training_callbacks(settings, data, strategy, steps, eval_batch,
                        transform, baseline):
  """Every callback of a run's `fit`, in the order they must run."""
  chief = distribute.is_chief(strategy)
  callbacks = [callbacks_lib.dao_learning_rate_scheduler(
      settings.lr, settings.epochs, settings.momentum_convention)]
  if settings.recalibrate_batch_norm:
    # Before the state update and the validation that use them.
    callbacks.append(callbacks_lib.BatchNormRecalibration(
        pipeline.eval_dataset(
            data.source if settings.source_only else data.target,
            eval_batch, transform)))
  epoch_state = None
  if not settings.source_only:
    sharding = distribute.epoch_sharding(strategy)
    shards = lambda domain: [  # pylint: disable=g-long-lambda
        pipeline.eval_dataset(domain, eval_batch, transform, shard=shard)
        for shard in sharding.dataset_shards(len(domain))]
    epoch_state = callbacks_lib.EpochStateCallback(
        pipeline.eval_dataset(data.source, eval_batch, transform),
        pipeline.eval_dataset(data.target, eval_batch, transform),
        source_shards=shards(data.source), target_shards=shards(data.target),
        sum_over_shards=sharding.sum_over_shards,
        epochs=settings.epochs, warmup_epochs=settings.warmup_epochs,
        kmeans_iterations=settings.kmeans_iterations,
        spherical_kmeans=settings.spherical_kmeans,
        centre_init=settings.centre_init,
        soft_selection=settings.soft_selection,
        empty_clusters=settings.empty_clusters,
        kmeans_labels=settings.kmeans_labels)
    callbacks.append(epoch_state)
  # Label-free target scores into the logs, then the best-scored epoch's
  # weights kept: after the state update and the BatchNorm recalibration,
  # before the backup and the logging.
  label_scores = label_free_scores.LabelFreeScores(
      pipeline.eval_dataset(data.target, eval_batch, transform),
      baseline_predictions=baseline.predictions if baseline else None)
  source_shares = scores_lib.class_shares(data.source.labels,
                                         data.source.num_classes)
  selector = model_selection.BestEpochWeights(
      settings.select_by, label_scores,
      max_share=collapse_guard.share_limit(source_shares),
      # A source-only model never trains on its target predictions.
      exclude_after_herding=(settings.exclude_after_herding
                             and not settings.source_only))
  callbacks += [label_scores, selector]
  backup = backup_lib.TrainingBackup(
      os.path.join(settings.model_dir, BACKUP_DIR), steps, settings.epochs,
      run_record=_run_record(settings, data, steps),
      save_every_steps=settings.checkpoint_every_steps,
      epoch_state=epoch_state, strategy=strategy,
      setting_defaults=run_directory.setting_defaults(settings),
      selector=selector)
  # First the divergence check, so that a step whose loss is NaN is never
  # backed up; then the backup, after the callbacks that set the state.
  callbacks = ([divergence.StopOnNonFiniteLoss(steps, settings.epochs,
                                               backup)]
               + callbacks + [backup])
  if chief:  # TensorBoard, metrics.csv, the epoch lines: the chief's alone.
    callbacks += run_logging.run_callbacks(
        settings.model_dir, epoch_state=epoch_state,
        class_names=data.source.class_names)
    callbacks.append(epoch_summary.EpochSummary(
        settings.method, settings.epochs, settings.source_only))
  return _TrainingCallbacks(callbacks, epoch_state, label_scores, selector,
                            backup, source_shares)


def _trained_above_cut(model, data):
  return model.backbone is not None and data.frozen_backbone is not None


def _model_to_keep(model, data):
  """What model.keras and the export hold: for a run that trained a
  backbone's top on cached activations, the whole network (raw images in);
  otherwise the model trained."""
  if _trained_above_cut(model, data):
    return cut.whole_network_model(model, data.frozen_backbone)
  return model


def _load_baseline_weights(model, baseline, data):
  """The source-only baseline's weights into `model` (`--on_collapse`)."""
  if not _trained_above_cut(model, data):
    collapse_guard.load_baseline_weights(model, baseline)
    return
  # The baseline saved its whole network; the top's layers are shared.
  whole = cut.whole_network_model(model, data.frozen_backbone)
  collapse_guard.load_baseline_weights(whole, baseline)
  cut.copy_head_state(whole, model)


BACKUP_DIR = run_directory.BACKUP_DIR
RUN_INFO_FILE = run_directory.RUN_INFO_FILE


def finished_result(settings):
  """The result of a run that already finished in `settings.model_dir` with
  exactly these settings, or None.

  `run` writes `run_info.json` last, after the model and its files, so its
  presence means the run is complete. A run whose recorded settings differ
  in anything but where output goes (`run_directory.RUNTIME_ONLY`), or
  whose file cannot be read, does not count: it is trained again.

  Args:
    settings: the `RunSettings` of the run.

  Returns:
    The dict `run` returned for it, or None.
  """
  path = os.path.join(settings.model_dir, RUN_INFO_FILE)
  try:
    with open(path) as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  # Where output goes and what is printed do not make it another run.
  if (not isinstance(info, dict) or not isinstance(info.get("settings"), dict)
      or run_directory.differences(info["settings"], settings)):
    return None
  return {key: value for key, value in info.items()
          if key not in ("settings", "skipped_image_files")}


def _save_predictions(path, predictions):
  """Writes `[N]` target predictions to `path` (.npy) atomically."""
  staging = f"{path}.{os.getpid()}.staging.npy"
  with write_guard.guarded("the target predictions", path, cleanup=staging):
    np.save(staging, np.asarray(predictions, np.int32))
    os.replace(staging, path)


def _per_class_accuracy(model, domain, batch_size, transform):
  """Accuracy of every class of the scored target (VisDA-style tables).

  Runs outside any replica context, like the per-epoch pass, so every
  worker scores the whole set with the same weights."""
  outputs = inference.extract(
      model, pipeline.eval_dataset(domain, batch_size, transform))
  confusion = metrics.confusion_matrix(outputs.labels, outputs.predictions,
                                       domain.num_classes)
  return {name: float(value) for name, value in zip(
      domain.class_names, metrics.per_class_accuracy(confusion))}


def _run_record(settings, data, steps):
  """What a backup must match to be resumed by this run."""
  return {"settings": run_directory.comparable_settings(settings),
          "epochs": settings.epochs, "steps_per_epoch": steps,
          "batch_size": settings.batch_size, "seed": settings.seed,
          "method": settings.method, "backbone": settings.backbone,
          "num_classes": data.source.num_classes,
          "source_examples": len(data.source),
          "target_examples": len(data.target)}


def _fit(model, train, validation, steps, epochs, resume, epoch_state,
         callbacks, verbose):
  """`model.fit` from where `resume` stands; returns the merged history.

  `train(s)` is the training stream from step s; the stream is a pure
  function of the seed, so it starts where the interrupted run was. An
  epoch interrupted in its middle is finished by a `fit` of its remaining
  steps that keeps the restored per-epoch state; then the other epochs.
  """
  history = {}

  def fit(first_epoch, last_epoch, epoch_steps, done):
    result = model.fit(train(done), initial_epoch=first_epoch,
                       epochs=last_epoch, steps_per_epoch=epoch_steps,
                       validation_data=validation, callbacks=callbacks,
                       verbose=verbose,
                       # The datasets shuffle; Keras' default warns.
                       shuffle=False)
    for key, values in result.history.items():
      history.setdefault(key, []).extend(values)

  epoch = resume.epoch if resume else 0
  if resume and resume.step_in_epoch:
    if epoch_state is not None:
      epoch_state.keep_restored_state(epoch, resume.epoch_logs)
    fit(epoch, epoch + 1, steps - resume.step_in_epoch, resume.global_step)
    epoch += 1
  if epoch < epochs:
    fit(epoch, epochs, steps, epoch * steps)
  return history


def save_model(model, path, strategy=None):
  """`model.save(path)` atomically: into a staging file, then renamed, so a
  run killed while saving never leaves a torn `model.keras`. Only the chief
  writes `path` (see `distribute.write_location`)."""
  with distribute.write_location(path, strategy) as where:
    folder, name = os.path.split(where)
    # Keras wants the .keras suffix; the leading dot hides the staging file.
    staging = os.path.join(folder, f".{os.getpid()}.staging.{name}")
    what, intact = f"the model {name}", "any earlier one is unchanged"
    optimizer = getattr(model, "optimizer", None)  # None: not compiled.
    write_guard.check_room(folder, write_guard.estimate_bytes(
        model.weights + (optimizer.variables if optimizer else [])), what,
                           intact)
    try:
      with write_guard.guarded(what, where, intact, cleanup=staging):
        model.save(staging)
        os.replace(staging, where)
    finally:
      if os.path.exists(staging):
        os.remove(staging)


write_json = run_files.write_json
