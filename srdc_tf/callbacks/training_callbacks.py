"""Every callback of a run's `fit`, built from its settings, in the order
they must run; and the ones the run reads again after `fit`."""

import dataclasses
import os

from srdc_tf import collapse_guard
from srdc_tf import distribute
from srdc_tf import run_directory
from srdc_tf import scores as scores_lib
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import batch_norm
from srdc_tf.callbacks import divergence
from srdc_tf.callbacks import epoch_state as epoch_state_lib
from srdc_tf.callbacks import epoch_summary
from srdc_tf.callbacks import label_free_scores
from srdc_tf.callbacks import model_selection
from srdc_tf.callbacks import run_logging
from srdc_tf.callbacks import schedules
from srdc_tf.data import pipeline


@dataclasses.dataclass(frozen=True)
class TrainingCallbacks:
  """The callbacks of a run's `fit`, in order, and those the run reads
  after it.

  Attributes:
    callbacks: the list to pass to `fit`.
    epoch_state: the `EpochStateCallback` (None for a source-only run).
    label_scores: the `LabelFreeScores` of every epoch.
    selector: the `BestEpochWeights` that keeps the selected epoch.
    backup: the `TrainingBackup` that resumes and removes the backup.
    source_shares: the source's class frequencies (the guard's limits).
  """
  callbacks: list
  epoch_state: object
  label_scores: object
  selector: object
  backup: object
  source_shares: object


def training_callbacks(settings, data, strategy, steps, eval_batch,
                       transform, baseline):
  """Every callback of a run's `fit`, in the order they must run.

  Args:
    settings: the run's `RunSettings`.
    data: its `RunData`.
    strategy: its `tf.distribute.Strategy`.
    steps: training steps per epoch.
    eval_batch: the batch size of the inference passes.
    transform: the evaluation `ImageTransform`, or None on cached inputs.
    baseline: the finished source-only `collapse_guard.Baseline`, or None.

  Returns:
    A `TrainingCallbacks`.
  """
  chief = distribute.is_chief(strategy)
  callbacks = [schedules.dao_learning_rate_scheduler(
      settings.lr, settings.epochs, settings.momentum_convention)]
  if settings.backbone_frozen_epochs:
    callbacks.append(schedules.BackboneRelease())
  if settings.recalibrate_batch_norm:
    # Before the state update and the validation that use them.
    callbacks.append(batch_norm.BatchNormRecalibration(
        pipeline.eval_dataset(
            data.source if settings.source_only else data.target,
            eval_batch, transform)))
  epoch_state = None
  if not settings.source_only:
    epoch_state = _epoch_state(settings, data, strategy, eval_batch,
                               transform)
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
                             and not settings.source_only),
      # The refined model is the last epoch's (`BestEpochWeights`).
      preferred_from_epoch=(settings.epochs - 1
                            if settings.refined_epochs else 0))
  callbacks += [label_scores, selector]
  backup = backup_lib.TrainingBackup(
      os.path.join(settings.model_dir, run_directory.BACKUP_DIR), steps,
      settings.epochs, run_record=_backup_record(settings, data, steps),
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
  return TrainingCallbacks(callbacks, epoch_state, label_scores, selector,
                           backup, source_shares)


def _epoch_state(settings, data, strategy, eval_batch, transform):
  """SRDC's per-epoch state update, its pass sharded over the workers."""
  sharding = distribute.epoch_sharding(strategy)
  shards = lambda domain: [  # pylint: disable=g-long-lambda
      pipeline.eval_dataset(domain, eval_batch, transform, shard=shard)
      for shard in sharding.dataset_shards(len(domain))]
  return epoch_state_lib.EpochStateCallback(
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
      kmeans_labels=settings.kmeans_labels,
      refinement_epochs=settings.refined_epochs,
      refinement_neighbours=settings.refinement_neighbours)


def _backup_record(settings, data, steps):
  """What a backup must match to be resumed by this run."""
  return {"settings": run_directory.comparable_settings(settings),
          "epochs": settings.epochs, "steps_per_epoch": steps,
          "batch_size": settings.batch_size, "seed": settings.seed,
          "method": settings.method, "backbone": settings.backbone,
          "num_classes": data.source.num_classes,
          "source_examples": len(data.source),
          "target_examples": len(data.target)}
