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
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import scores as scores_lib
from srdc_tf import selection
from srdc_tf import serving
from srdc_tf import write_guard
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import divergence
from srdc_tf.callbacks import epoch_summary
from srdc_tf.callbacks import label_free_scores
from srdc_tf.callbacks import model_selection
from srdc_tf.callbacks import run_logging
from srdc_tf.data import feature_cache
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.data import validation
from srdc_tf.models import backbones
from srdc_tf.models import cut
from srdc_tf.models import inference
from srdc_tf.models import precision
from srdc_tf.models import srdc_model


# Where SRDC-TF and the released code differ, and the switches beyond it:
# a results table names each that a run sets away from its default.
RELEASED_CODE_SWITCHES = ("empty_clusters", "kmeans_labels", "head_init",
                          "epoch_structure", "momentum_convention",
                          "feature_assignment", "diversity_weight",
                          "diversity_floor", "source_label_smoothing")


# Views cached per image when only a backbone's top trains (see
# `models.cut`): the evaluation view and 3 training views (crops and flips).
DEFAULT_CACHED_VIEWS = 4
# Views cached per image of a wholly frozen backbone: as many, so the heads
# train on augmented views. Chosen by issue 17's rule (README, "Where this
# differs from the released code"): +1.0 on the Office-31 average at seed
# 0 against the evaluation view alone (1); the digits train no frozen
# backbone. The value itself is the trained top's, not tuned.
DEFAULT_FROZEN_VIEWS = DEFAULT_CACHED_VIEWS


@dataclasses.dataclass(frozen=True)
class RunSettings:
  """Everything a training run needs; see `srdc_tf.train` for each flag."""
  source: str
  target: str
  model_dir: str
  task: str = None
  target_eval: str = None
  data_root: str = None
  source_list_root: str = None
  target_list_root: str = None
  tfds_data_dir: str = None
  shared_classes: bool = False
  synthetic_examples_per_class: int = 300
  image_size: int = 32
  resize_size: int = None
  random_flip: bool = False
  random_translate: int = 0
  random_rotation: float = 0.0
  augment_fill: str = "zeros"
  colour_augmentation: str = "none"
  channels: int = 3
  backbone: str = "lenet"
  weights: str = None
  freeze_backbone: bool = False
  trainable_layers: int = None
  trainable_from: str = None
  cached_views: int = None
  feature_cache_dir: str = None
  bottleneck_dim: int = 512
  source_only: bool = False
  alpha: float = 1.0
  beta: float = 1.0
  detach_q: bool = False
  feature_clustering: bool = True
  source_regularization: bool = True
  soft_selection: bool = True
  recalibrate_batch_norm: bool = True
  kmeans_iterations: int = 5
  spherical_kmeans: bool = False
  centre_init: str = "mean"
  empty_clusters: str = "keep"
  kmeans_labels: str = "final"
  head_init: str = "glorot"
  feature_assignment: str = "softmax"
  diversity_weight: float = 0.0
  diversity_floor: float = 1.0
  source_label_smoothing: float = 0.0
  epoch_structure: str = "stream"
  momentum_convention: str = "keras"
  epochs: int = 200
  steps_per_epoch: int = None
  batch_size: int = 64
  lr: float = 0.01
  momentum: float = 0.9
  weight_decay: float = 1e-4
  backbone_lr_multiplier: float = 0.1
  seed: int = 0
  export_dir: str = None
  verbose: int = 2
  skip_bad_images: bool = False
  min_image_side: int = validation.MIN_IMAGE_SIDE
  max_image_side: int = validation.MAX_IMAGE_SIDE
  deterministic: bool = False
  checkpoint_every_steps: int = 500
  worker_weights_dir: str = None
  precision: str = "float32"
  fused_batch_norm: bool = True
  select_by: str = selection.DEFAULT_SELECT_BY
  on_collapse: str = "warn"

  @classmethod
  def from_flags(cls, flag_values):
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: flag_values[name].value for name in names})

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  @property
  def method(self):
    """The row name of a results table."""
    if self.source_only:
      return "source_only"
    ablations = [name for name, on in (
        ("no_source_regularization", self.source_regularization),
        ("no_feature_clustering", self.feature_clustering),
        ("no_soft_selection", self.soft_selection)) if not on]
    if self.detach_q:
      ablations.append("detach_q")
    if not self.recalibrate_batch_norm:
      ablations.append("moving_bn_statistics")
    defaults = {field.name: field.default
                for field in dataclasses.fields(self)}
    ablations += [f"{name}={getattr(self, name)}"
                  for name in RELEASED_CODE_SWITCHES
                  if getattr(self, name) != defaults[name]]
    return "+".join(["srdc"] + ablations)

  @property
  def task_name(self):
    return self.task or f"{self.source}->{self.target}"

  @property
  def trains_top_only(self):
    """Only the backbone's last layers train (`--trainable_layers` or
    `--trainable_from`)."""
    return self.trainable_layers is not None or self.trainable_from is not None

  @property
  def caches_features(self):
    """A wholly frozen backbone runs once per image, not once per step."""
    return self.freeze_backbone and not self.trains_top_only

  @property
  def caches_activations(self):
    """Below a trained top, the frozen layers run once per cached view."""
    return self.trains_top_only and self.views_per_image > 0

  @property
  def views_per_image(self):
    """`--cached_views`, or its default for what the run caches."""
    if self.cached_views is not None:
      return self.cached_views
    return (DEFAULT_CACHED_VIEWS if self.trains_top_only
            else DEFAULT_FROZEN_VIEWS)

  @property
  def backbone_id(self):
    """The backbone and its weights, as the feature cache keys them."""
    backbone_id = f"{self.backbone}:{self.weights}"
    if self.weights and os.path.isfile(self.weights):
      # Other weights written to the same file are other features.
      status = os.stat(self.weights)
      backbone_id += f":{status.st_size}:{status.st_mtime_ns}"
    if self.fused_batch_norm and self.backbone != "lenet":
      # Its features differ from Keras' BatchNorm ops' by round-off.
      backbone_id += ":fused_batch_norm"
    return backbone_id

  @property
  def transform(self):
    return transforms.ImageTransform(
        image_size=self.image_size, channels=self.channels,
        resize_size=self.resize_size, random_flip=self.random_flip,
        random_translate=self.random_translate,
        random_rotation=self.random_rotation, fill=self.augment_fill,
        colour_augmentation=self.colour_augmentation)


@dataclasses.dataclass(frozen=True)
class RunData:
  """The domains of a run, and the frozen network in front of what the run
  trains when they hold its cached outputs instead of images: the whole
  backbone (cached features), or the part below the cut (cached
  activations, `models.cut`). The export puts it back in front."""
  source: object
  target: object
  target_eval: object
  frozen_backbone: object = None


def load_data(settings):
  """Loads the source, target and evaluation domains of a run, with the
  target's class ids aligned to the source's."""
  def load(spec, list_root):
    return sources.load_domain(
        spec, data_root=settings.data_root, list_root=list_root,
        tfds_data_dir=settings.tfds_data_dir,
        synthetic_examples_per_class=settings.synthetic_examples_per_class,
        seed=settings.seed, skip_bad_images=settings.skip_bad_images,
        min_image_side=settings.min_image_side,
        max_image_side=settings.max_image_side)

  source = load(settings.source, settings.source_list_root)
  target = load(settings.target, settings.target_list_root)
  if settings.target_eval and settings.target_eval != settings.target:
    target_eval = load(settings.target_eval, settings.target_list_root)
  else:
    target_eval = target
  if not source.has_labels:
    raise ValueError(f"--source={settings.source!r} has unlabelled examples")
  source, aligned_target = sources.align_classes(
      source, target, settings.shared_classes)
  if target_eval is target:
    target_eval = aligned_target
  else:
    _, target_eval = sources.align_classes(source, target_eval,
                                           settings.shared_classes)
  target = aligned_target
  views, backbone_id = None, settings.backbone_id
  if not settings.weights or settings.weights in ("none", "None"):
    # A frozen network of random weights is the seed's: built from it, so
    # that a resumed run embeds as the first did, and cached under it.
    keras.utils.set_random_seed(settings.seed)
    backbone_id += f":seed{settings.seed}"
  if settings.caches_features:
    frozen = backbones.build_backbone(
        settings.backbone, settings.transform.shape, weights=settings.weights,
        trainable=False, fused_batch_norm=settings.fused_batch_norm)
    # One view keeps the cache of the evaluation view alone (and its key).
    views = settings.views_per_image if settings.views_per_image > 1 else None
  elif settings.caches_activations:
    split = _split_backbone(settings)
    frozen, views = split.bottom, settings.views_per_image
    backbone_id += f":below:{split.cut_layer}"
  else:
    return RunData(source, target, target_eval)
  cache_dir = settings.feature_cache_dir or os.path.join(
      settings.model_dir, "feature_cache")
  embed = lambda domain: feature_cache.backbone_features(  # pylint: disable=g-long-lambda
      domain, frozen, settings.transform, settings.batch_size, cache_dir,
      backbone_id, views)
  source_features, target_features = embed(source), embed(target)
  eval_features = (target_features if target_eval is target
                   else embed(target_eval))
  return RunData(source_features, target_features, eval_features, frozen)


def _split_backbone(settings):
  return cut.split_backbone(
      settings.backbone, settings.transform.shape, weights=settings.weights,
      trainable_layers=settings.trainable_layers,
      trainable_from=settings.trainable_from,
      fused_batch_norm=settings.fused_batch_norm)


def build_model(settings, data):
  """The `SRDCModel` a run trains (not compiled). On cached features it
  has no backbone and takes the features. Its layers compute in
  `settings.precision` (see `models.precision`)."""
  with precision.dtype_policy(settings.precision):
    return _build_model(settings, data)


def _build_model(settings, data):
  if settings.caches_activations:
    backbone = _split_backbone(settings).top
    input_shape = data.source.images.shape[2:]
  elif data.frozen_backbone is not None:
    first_feature_axis = 2 if data.source.cached_views else 1
    backbone = None
    input_shape = data.source.images.shape[first_feature_axis:]
  else:
    input_shape = settings.transform.shape
    if settings.trains_top_only:  # --cached_views=0: every step runs it all.
      split = _split_backbone(settings)
      backbone = cut.join(split.bottom, split.top)
    else:
      backbone = backbones.build_backbone(
          settings.backbone, input_shape, weights=settings.weights,
          trainable=not settings.freeze_backbone,
          fused_batch_norm=settings.fused_batch_norm)
  return srdc_model.SRDCModel(
      backbone, num_classes=data.source.num_classes, input_shape=input_shape,
      num_source_examples=len(data.source),
      num_target_examples=len(data.target),
      bottleneck_dim=settings.bottleneck_dim, alpha=settings.alpha,
      beta=settings.beta, detach_q=settings.detach_q,
      feature_clustering=settings.feature_clustering,
      source_regularization=settings.source_regularization,
      source_only=settings.source_only, weight_decay=settings.weight_decay,
      backbone_lr_multiplier=settings.backbone_lr_multiplier,
      head_init=settings.head_init,
      feature_assignment=settings.feature_assignment,
      diversity_weight=settings.diversity_weight,
      diversity_floor=settings.diversity_floor,
      source_label_smoothing=settings.source_label_smoothing)


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
    model = build_model(settings, data)
    model.compile(
        optimizer=keras.optimizers.SGD(settings.lr,
                                       momentum=settings.momentum),
        jit_compile=False)  # XLA halves CPU training speed.
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
        epochs=settings.epochs,
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
  baseline = (collapse_guard.read_baseline(baseline_dir) if baseline_dir
              else None)
  label_scores = label_free_scores.LabelFreeScores(
      pipeline.eval_dataset(data.target, eval_batch, transform),
      baseline_predictions=baseline.predictions if baseline else None)
  source_shares = scores_lib.class_shares(data.source.labels,
                                         data.source.num_classes)
  selector = model_selection.BestEpochWeights(
      settings.select_by, label_scores,
      max_share=collapse_guard.share_limit(source_shares))
  callbacks += [label_scores, selector]
  backup = backup_lib.TrainingBackup(
      os.path.join(settings.model_dir, BACKUP_DIR), steps, settings.epochs,
      run_record=_run_record(settings, data, steps),
      save_every_steps=settings.checkpoint_every_steps,
      epoch_state=epoch_state, strategy=strategy,
      setting_defaults=run_directory.setting_defaults(settings))
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
  resume = backup.restore(model)
  console.banner(
      f"{'Source-only baseline' if settings.source_only else 'SRDC'}: "
      f"{settings.epochs} epochs of {steps} steps into {settings.model_dir}"
      + (f", resumed at step {resume.global_step}" if resume else ""))
  start = time.time()
  # Keras' own line of every logged value only at --verbose=3 and above.
  history = _fit(model, train, target_eval, steps, settings.epochs, resume,
                 epoch_state, callbacks, 2 if settings.verbose >= 3 else 0)
  seconds = time.time() - start
  if history.get("val_target_accuracy"):
    accuracy = float(history["val_target_accuracy"][-1])
  else:  # Resumed after the last epoch: nothing was left to train.
    accuracy = float(model.evaluate(target_eval, verbose=0,
                                    return_dict=True)["target_accuracy"])
  # === Select the epoch kept, then the collapse guard ===
  selected = selector.finish(model, settings.epochs - 1)
  if selected.restored:
    accuracy = float(history["val_target_accuracy"][selected.position])
  outcome = collapse_guard.guard(
      settings.method, selected.scores, selected.epoch, source_shares,
      settings.select_by, settings.on_collapse, baseline,
      epoch_scores=label_scores.epoch_scores)
  kept_scores, kept_predictions = selected.scores, selected.predictions
  if outcome.exported == collapse_guard.SOURCE_ONLY:
    _load_baseline_weights(model, baseline, data)
    accuracy = baseline.target_accuracy
    kept_scores = label_scores.compute(model)
    kept_predictions = label_scores.last_predictions
    # The baseline has no pseudo-labels of its own to agree with.
    kept_scores.pop(scores_lib.KMEANS_AGREEMENT, None)
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
  export = None
  if settings.export_dir:
    console.banner(f"Export: a SavedModel version under {settings.export_dir}")
    with distribute.write_location(settings.export_dir, strategy) as base:
      export = serving.export_saved_model(
          kept, base, data.source.class_names, transform=settings.transform,
          backbone=data.frozen_backbone if heads_only else None)
    export = export if chief else None
  skipped = {"source": list(data.source.skipped),
             "target": list(data.target.skipped)}
  if data.target_eval is not data.target:
    skipped["target_eval"] = list(data.target_eval.skipped)
  result = {"target_accuracy": accuracy,
            "per_class_accuracy": _per_class_accuracy(
                model, data.target_eval, eval_batch, transform),
            "seconds": seconds, "export": export, "epochs": settings.epochs,
            "task": settings.task_name, "method": settings.method,
            "seed": settings.seed,
            "resumed_from": resume.global_step if resume else 0,
            "skipped_images": {name: len(items)
                               for name, items in skipped.items()}}
  result.update({
      "select_by": selected.select_by, "selected_epoch": selected.epoch,
      "selection_score": selected.score,
      "selection_max_share": selector.max_share, "scores": kept_scores,
      "epoch_scores": [{"epoch": epoch, **values} for epoch, values in
                       sorted(label_scores.epoch_scores.items())],
      "warnings": [finding.as_dict() for finding in outcome.findings],
      "exported": (settings.method
                   if outcome.exported == collapse_guard.ADAPTED
                   else collapse_guard.SOURCE_ONLY)})
  if outcome.exported == collapse_guard.SOURCE_ONLY:
    result["adapted_target_accuracy"] = (
        float(history["val_target_accuracy"][selected.position])
        if selected.position is not None else None)
  if chief:
    # Before run_info.json, which marks the run finished.
    _save_predictions(os.path.join(settings.model_dir,
                                   collapse_guard.PREDICTIONS_FILE),
                      kept_predictions)
    write_json(os.path.join(settings.model_dir, RUN_INFO_FILE),
               {**result, "settings": dataclasses.asdict(settings),
                "skipped_image_files": {
                    name: [dataclasses.asdict(item) for item in items]
                    for name, items in skipped.items()}})
  # Finished and written: a restart starts over instead of resuming.
  backup.remove()
  return result


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
