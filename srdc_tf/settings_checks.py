"""Checks of a run's settings, before any work: the flags of `srdc-train`
and the keyword arguments of `srdc_tf.fit` go through the same checks, and
every message names the setting as its flag (`--epochs`).
"""

import os

from srdc_tf.models import backbones


def cautions(settings, with_baseline=False):
  """Settings that are valid together but that measurably work against
  each other: one line each, for the run to print before it starts.

  Args:
    settings: as `check`.
    with_baseline: whether a source-only baseline is trained too.

  Returns:
    A list of messages (empty when there is nothing to say).
  """
  messages = []
  trains_source_only = settings.source_only or with_baseline
  if (settings.source_label_smoothing and settings.select_by == "entropy"
      and trains_source_only):
    # Measured (README, "Where this differs from the released code"): the
    # smoothed baseline's target entropy rises as it trains, so the most
    # confident epoch is one of its first (Office-31 A->W: epoch 0 kept,
    # 65.9% against 71.7% at its last).
    messages.append(
        f"--source_label_smoothing={settings.source_label_smoothing} with "
        "--select_by=entropy: smoothing raises the source-only model's "
        "target entropy as it trains, so entropy selection keeps one of "
        "its first epochs; --select_by=last keeps its last")
  return messages


def check(settings, with_baseline=False):
  """Raises if a setting is out of range or names a missing file.

  Args:
    settings: a `run_settings.RunSettings`.
    with_baseline: whether a source-only baseline is trained too.

  Raises:
    ValueError: the first bad setting, naming its flag and the value.
  """
  if settings.trainable_layers is not None and settings.trainable_layers <= 0:
    raise ValueError(
        f"--trainable_layers must be > 0, got {settings.trainable_layers}")
  if settings.trainable_layers is not None and settings.trainable_from:
    raise ValueError(
        f"give one of --trainable_layers={settings.trainable_layers} and "
        f"--trainable_from={settings.trainable_from!r}, not both")
  if (settings.cached_views == 0 and settings.freeze_backbone
      and settings.trainable_layers is None and not settings.trainable_from):
    raise ValueError(
        "--cached_views=0 needs --trainable_layers or --trainable_from: a "
        "frozen backbone's features are always cached (give >= 1)")
  for name in ("epochs", "batch_size", "image_size", "bottleneck_dim",
               "min_image_side", "max_image_side"):
    if getattr(settings, name) <= 0:
      raise ValueError(f"--{name} must be > 0, got {getattr(settings, name)}")
  if settings.steps_per_epoch is not None and settings.steps_per_epoch <= 0:
    raise ValueError(
        f"--steps_per_epoch must be > 0, got {settings.steps_per_epoch}")
  if settings.lr <= 0:
    raise ValueError(f"--lr must be > 0, got {settings.lr}")
  for name in ("backbone_lr_multiplier", "weight_decay", "diversity_weight"):
    if getattr(settings, name) < 0:
      raise ValueError(f"--{name} must be >= 0, got "
                       f"{getattr(settings, name)}")
  if not 0.0 <= settings.momentum < 1.0:
    raise ValueError(f"--momentum must be in [0, 1), got {settings.momentum}")
  if not 0.0 <= settings.diversity_floor <= 1.0:
    raise ValueError(f"--diversity_floor must be in [0, 1], got "
                     f"{settings.diversity_floor}")
  if not 0.0 <= settings.target_confidence_threshold < 1.0:
    raise ValueError(f"--target_confidence_threshold must be in [0, 1), got "
                     f"{settings.target_confidence_threshold}")
  if not 0.0 <= settings.source_label_smoothing < 1.0:
    raise ValueError(f"--source_label_smoothing must be in [0, 1), got "
                     f"{settings.source_label_smoothing}")
  if not 1 <= settings.warmup_epochs <= settings.epochs:
    raise ValueError(f"--warmup_epochs must be in [1, --epochs="
                     f"{settings.epochs}], got {settings.warmup_epochs}")
  if settings.refinement_epochs is not None and (
      settings.refinement_epochs < 0 or (
          settings.refinement_epochs
          and settings.refinement_epochs >= settings.epochs - (
              settings.warmup_epochs))):
    raise ValueError(
        f"--refinement_epochs must be in [0, --epochs - --warmup_epochs = "
        f"{settings.epochs - settings.warmup_epochs}), so that SRDC's own "
        f"clustering runs first; got {settings.refinement_epochs}")
  if settings.refinement_neighbours < 1:
    raise ValueError(f"--refinement_neighbours must be >= 1, got "
                     f"{settings.refinement_neighbours}")
  if not 0.0 <= settings.beta <= 1.0:
    raise ValueError(f"--beta must be in [0, 1], got {settings.beta}")
  if settings.alpha <= 0:
    raise ValueError(f"--alpha must be > 0, got {settings.alpha}")
  if settings.kmeans_iterations < 0:
    raise ValueError(
        f"--kmeans_iterations must be >= 0, got {settings.kmeans_iterations}")
  if settings.channels not in (1, 3):
    raise ValueError(f"--channels must be 1 or 3, got {settings.channels}")
  if settings.min_image_side > settings.max_image_side:
    raise ValueError(
        f"--min_image_side={settings.min_image_side} is larger than "
        f"--max_image_side={settings.max_image_side}")
  if settings.on_collapse == "fallback" and (settings.source_only
                                            or not with_baseline):
    raise ValueError("--on_collapse=fallback needs --with_baseline (and "
                     "no --source_only): it falls back to the baseline")
  if settings.checkpoint_every_steps < 0:
    raise ValueError("--checkpoint_every_steps must be >= 0, got "
                     f"{settings.checkpoint_every_steps}")
  if settings.backbone not in backbones.BACKBONES:
    raise ValueError(f"--backbone must be one of {backbones.BACKBONES}, "
                     f"got {settings.backbone!r}")
  if (settings.weights not in (None, "", "none", "imagenet")
      and not os.path.isfile(settings.weights)):
    raise ValueError(f"--weights={settings.weights!r}: no such file")
  backbones.check_dropout(settings.backbone, settings.lenet_dropout)
  if settings.lenet_dropout and (settings.freeze_backbone
                                 or settings.trainable_layers is not None
                                 or settings.trainable_from):
    raise ValueError(f"--lenet_dropout={settings.lenet_dropout} needs the "
                     "whole LeNet trained: with --freeze_backbone, "
                     "--trainable_layers or --trainable_from it would have "
                     "no effect")
  check_batch_norm_mode(settings)
  check_backbone_frozen_epochs(settings)
  if settings.weights == "imagenet" and settings.backbone == "lenet":
    raise ValueError("--weights=imagenet is not available for "
                     "--backbone=lenet (train it from scratch)")
  smallest = backbones.MIN_IMAGE_SIZE[settings.backbone]
  if settings.image_size < smallest:
    raise ValueError(
        f"--image_size={settings.image_size} is too small for "
        f"--backbone={settings.backbone}, which needs at least {smallest}")
  if (settings.resize_size is not None
      and settings.resize_size < settings.image_size):
    raise ValueError(
        f"--resize_size={settings.resize_size} is smaller than "
        f"--image_size={settings.image_size}: the crop would not fit")
  for name in ("model_dir", "export_dir", "feature_cache_dir",
               "worker_weights_dir"):
    check_output_folder(name, getattr(settings, name))


def check_batch_norm_mode(settings):
  """Refuses a `--backbone_batch_norm` that is unknown, or `frozen` where
  it would change nothing: a wholly frozen backbone's BatchNorm layers
  always run in inference mode, and LeNet has none.

  Args:
    settings: as `check`.

  Raises:
    ValueError: naming the flag, its value and why.
  """
  mode = settings.backbone_batch_norm
  if mode not in backbones.BATCH_NORM_MODES:
    raise ValueError(f"--backbone_batch_norm must be one of "
                     f"{backbones.BATCH_NORM_MODES}, got {mode!r}")
  if mode == "frozen" and settings.caches_features:
    raise ValueError("--backbone_batch_norm=frozen has no effect with "
                     "--freeze_backbone: a frozen backbone's BatchNorm "
                     "layers always run in inference mode")
  if mode == "frozen" and settings.backbone == "lenet":
    raise ValueError("--backbone_batch_norm=frozen has no effect with "
                     "--backbone=lenet, which has no BatchNorm layer")


def check_backbone_frozen_epochs(settings):
  """Refuses a `--backbone_frozen_epochs` outside [0, --epochs), or above 0
  for a wholly frozen backbone, which never trains.

  Args:
    settings: as `check`.

  Raises:
    ValueError: naming the flag, its value and why.
  """
  epochs = settings.backbone_frozen_epochs
  if not 0 <= epochs < settings.epochs:
    raise ValueError(f"--backbone_frozen_epochs must be in [0, --epochs="
                     f"{settings.epochs}), got {epochs}")
  if epochs and settings.caches_features:
    raise ValueError(f"--backbone_frozen_epochs={epochs} has no effect with "
                     "--freeze_backbone: that backbone never trains")


def check_output_folder(flag, path):
  """Refuses a folder setting that cannot become a writable folder, before
  any work: the path is a file, lies inside a file, or cannot be written.

  Args:
    flag: the flag's name, for the message (without dashes).
    path: its value; empty or None passes (the output is off).

  Raises:
    ValueError: naming the flag, its value and what is wrong.
  """
  if not path:
    return
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"--{flag}={path!r} is a file, not a folder")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(
        f"--{flag}={path!r} cannot be created: {existing!r} is a file")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(
        f"--{flag}={path!r} cannot be written: no write permission on "
        f"{existing!r}")
