"""Builds a run from its settings and trains it: data, model, callbacks, fit.

Data flows one way: flags -> `RunSettings` -> datasets + model + callbacks
-> `fit` -> metrics, checkpoints, TensorBoard, SavedModel.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf

from srdc_tf import callbacks as callbacks_lib
from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf.callbacks import run_logging
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.models import backbones
from srdc_tf.models import srdc_model


@dataclasses.dataclass(frozen=True)
class RunSettings:
  """Everything a training run needs; see `srdc_tf.train` for each flag."""
  source: str
  target: str
  model_dir: str
  target_eval: str = None
  synthetic_examples_per_class: int = 300
  image_size: int = 32
  resize_size: int = None
  random_flip: bool = False
  channels: int = 3
  backbone: str = "lenet"
  weights: str = None
  bottleneck_dim: int = 512
  source_only: bool = False
  alpha: float = 1.0
  beta: float = 1.0
  detach_q: bool = False
  feature_clustering: bool = True
  source_regularization: bool = True
  soft_selection: bool = True
  kmeans_iterations: int = 5
  spherical_kmeans: bool = False
  centre_init: str = "mean"
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

  @classmethod
  def from_flags(cls, flag_values):
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: flag_values[name].value for name in names})

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  @property
  def transform(self):
    return transforms.ImageTransform(
        image_size=self.image_size, channels=self.channels,
        resize_size=self.resize_size, random_flip=self.random_flip)


@dataclasses.dataclass(frozen=True)
class RunData:
  source: object
  target: object
  target_eval: object


def load_data(settings):
  """Loads the source, target and evaluation domains of a run."""
  def load(spec):
    return sources.load_domain(
        spec, synthetic_examples_per_class=settings.synthetic_examples_per_class,
        seed=settings.seed)

  source = load(settings.source)
  target = load(settings.target)
  target_eval = (target if not settings.target_eval
                 or settings.target_eval == settings.target
                 else load(settings.target_eval))
  if not source.has_labels:
    raise ValueError(f"--source={settings.source!r} has unlabelled examples")
  if tuple(source.class_names) != tuple(target.class_names):
    raise ValueError(
        f"class names differ: source {list(source.class_names)}, "
        f"target {list(target.class_names)}")
  return RunData(source, target, target_eval)


def build_model(settings, num_classes, num_source, num_target):
  """The `SRDCModel` a run trains, with its backbone (no compile)."""
  backbone = backbones.build_backbone(
      settings.backbone, settings.transform.shape, weights=settings.weights)
  return srdc_model.SRDCModel(
      backbone, num_classes=num_classes, input_shape=settings.transform.shape,
      num_source_examples=num_source, num_target_examples=num_target,
      bottleneck_dim=settings.bottleneck_dim, alpha=settings.alpha,
      beta=settings.beta, detach_q=settings.detach_q,
      feature_clustering=settings.feature_clustering,
      source_regularization=settings.source_regularization,
      source_only=settings.source_only, weight_decay=settings.weight_decay,
      backbone_lr_multiplier=settings.backbone_lr_multiplier)


def run(settings, data, strategy):
  """Trains one model and returns its summary.

  Args:
    settings: a `RunSettings`.
    data: the `RunData` (loaded once, shared by a run and its baseline).
    strategy: a `tf.distribute.Strategy`.

  Returns:
    A dict with the final `target_accuracy`, `seconds` of training, the
    `export` path (or None) and `epochs`.
  """
  keras.utils.set_random_seed(settings.seed)
  os.makedirs(settings.model_dir, exist_ok=True)
  transform = settings.transform
  batch = settings.batch_size
  train = pipeline.train_dataset(data.source, data.target, batch, transform,
                                 seed=settings.seed)
  steps = settings.steps_per_epoch or pipeline.steps_per_epoch(
      data.source, data.target, batch)
  eval_batch = max(batch, 128)
  target_eval = pipeline.eval_dataset(data.target_eval, eval_batch,
                                      transform).map(lambda x, y, i: (x, y))
  with strategy.scope():
    model = build_model(settings, data.source.num_classes, len(data.source),
                        len(data.target))
    model.compile(
        optimizer=keras.optimizers.SGD(settings.lr,
                                       momentum=settings.momentum),
        jit_compile=False)  # XLA halves CPU training speed.
  callbacks = [callbacks_lib.dao_learning_rate_scheduler(settings.lr,
                                                         settings.epochs)]
  epoch_state = None
  if not settings.source_only:
    epoch_state = callbacks_lib.EpochStateCallback(
        pipeline.eval_dataset(data.source, eval_batch, transform),
        pipeline.eval_dataset(data.target, eval_batch, transform),
        epochs=settings.epochs,
        kmeans_iterations=settings.kmeans_iterations,
        spherical_kmeans=settings.spherical_kmeans,
        centre_init=settings.centre_init,
        soft_selection=settings.soft_selection)
    callbacks.append(epoch_state)
  callbacks += run_logging.run_callbacks(
      settings.model_dir, epoch_state=epoch_state,
      class_names=data.source.class_names)
  start = time.time()
  history = model.fit(train, epochs=settings.epochs, steps_per_epoch=steps,
                      validation_data=target_eval, callbacks=callbacks,
                      verbose=settings.verbose)
  seconds = time.time() - start
  model.save(os.path.join(settings.model_dir, run_files.MODEL_FILE))
  # What the export binary and evaluation need beside model.keras.
  run_files.write_run_files(settings.model_dir, data.source.class_names,
                            settings.transform)
  export = None
  if settings.export_dir:
    export = serving.export_saved_model(
        model, settings.export_dir, data.source.class_names,
        transform=settings.transform)
  return {"target_accuracy": float(history.history["val_target_accuracy"][-1]),
          "seconds": seconds, "export": export, "epochs": settings.epochs}
