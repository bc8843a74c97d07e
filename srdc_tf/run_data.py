"""What a run trains on and what it trains: its domains (images, or a
frozen network's cached outputs) and its `SRDCModel`."""

import contextlib
import dataclasses
import os
import random

import keras

from srdc_tf.data import feature_cache
from srdc_tf.data import sources
from srdc_tf.models import backbones
from srdc_tf.models import cut
from srdc_tf.models import precision
from srdc_tf.models import srdc_model


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


def skipped_images(data):
  """The unreadable images skipped per domain of `data` (a `RunData`):
  `{"source": [...], "target": [...]}`, and `"target_eval"` when the scored
  target is another split."""
  skipped = {"source": list(data.source.skipped),
             "target": list(data.target.skipped)}
  if data.target_eval is not data.target:
    skipped["target_eval"] = list(data.target_eval.skipped)
  return skipped


def model_to_keep(model, data):
  """What model.keras and the export hold: for a run that trained a
  backbone's top on cached activations, the whole network (raw images in);
  otherwise the model trained."""
  # A backbone in the model and a frozen one in front: the top of a cut.
  if model.backbone is not None and data.frozen_backbone is not None:
    return cut.whole_network_model(model, data.frozen_backbone)
  return model


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
    target_eval = load(settings.target_eval,
                       settings.target_eval_list_root
                       or settings.target_list_root)
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
  if not settings.pretrained_backbone:
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
    split = split_backbone(settings)
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


def split_backbone(settings):
  """`models.cut.split_backbone` at the cut the settings name."""
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
  with (_seed_draws_kept() if settings.pretrained_backbone
        else contextlib.nullcontext()):
    backbone, input_shape = _trained_backbone(settings, data)
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
      source_label_smoothing=settings.source_label_smoothing,
      target_confidence_threshold=settings.target_confidence_threshold,
      backbone_frozen_epochs=settings.backbone_frozen_epochs)


@contextlib.contextmanager
def _seed_draws_kept():
  """Leaves Python's random state as it was on entry.

  Keras draws each unseeded initialiser's seed from Python's `random` when
  a layer is made, so building a backbone moves the draws of fc1 and fc2
  made after it. A pretrained backbone's own draws are overwritten by its
  weights; built inside this, it leaves the heads the draws of a run whose
  backbone is frozen and cached (built before the seed is set), so one
  seed starts both from the same heads and the two compare paired.
  """
  state = random.getstate()
  try:
    yield
  finally:
    random.setstate(state)


def _trained_backbone(settings, data):
  """The part of the backbone inside the model a run trains (None on
  cached features), and the model's input shape."""
  if settings.caches_activations:
    backbone = split_backbone(settings).top
    input_shape = data.source.images.shape[2:]
  elif data.frozen_backbone is not None:
    first_feature_axis = 2 if data.source.cached_views else 1
    backbone = None
    input_shape = data.source.images.shape[first_feature_axis:]
  else:
    input_shape = settings.transform.shape
    if settings.trains_top_only:  # --cached_views=0: every step runs it all.
      split = split_backbone(settings)
      backbone = cut.join(split.bottom, split.top)
    else:
      backbone = backbones.build_backbone(
          settings.backbone, input_shape, weights=settings.weights,
          trainable=not settings.freeze_backbone,
          fused_batch_norm=settings.fused_batch_norm,
          dropout=settings.lenet_dropout)
  if backbone is not None and settings.backbone_batch_norm == "frozen":
    backbones.freeze_batch_norm(backbone)
  return backbone, input_shape
