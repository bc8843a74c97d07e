"""Scores a trained model (a SavedModel export or a run's `model.keras`) on a
labelled domain, and writes the report as CSV files.

The metric math lives in `srdc_tf.metrics`; this module runs the model and
shapes the results into pandas tables.
"""

import dataclasses
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from srdc_tf import metrics
from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf.data import feature_cache
from srdc_tf.data import pipeline
from srdc_tf.data import transforms
from srdc_tf.models import inference

SUMMARY_FILE = "summary.csv"
PER_CLASS_FILE = "per_class.csv"
CONFUSION_FILE = "confusion_matrix.csv"


@dataclasses.dataclass(frozen=True)
class Predictions:
  """A model's predicted class for every example of a domain, in index
  order, with the true labels and the model's class names."""
  labels: np.ndarray
  predictions: np.ndarray
  class_names: tuple


@dataclasses.dataclass(frozen=True)
class Report:
  """An evaluation as tables.

  Attributes:
    summary: one row: `examples`, `top1_accuracy`, `mean_per_class_accuracy`
      (plus whatever the caller adds, e.g. the model and target).
    per_class: one row per class: `class`, `examples`, `correct`,
      `accuracy` (NaN for a class without examples).
    confusion: `[K, K]` counts; the index is the true class name, the
      columns the predicted class name.
  """
  summary: pd.DataFrame
  per_class: pd.DataFrame
  confusion: pd.DataFrame


def per_class_accuracy(model, domain, batch_size, transform):
  """Accuracy of every class of a labelled domain (VisDA-style tables).

  Runs outside any replica context, like the per-epoch pass, so every
  worker scores the whole set with the same weights.

  Args:
    model: an `SRDCModel` (or any model `models.inference.extract` runs).
    domain: the labelled domain, its classes the model's, in its order.
    batch_size: the inference batch size.
    transform: the evaluation `ImageTransform`, or None on cached inputs.

  Returns:
    `{class name: accuracy}` (NaN for a class without examples).
  """
  outputs = inference.extract(
      model, pipeline.eval_dataset(domain, batch_size, transform))
  confusion = metrics.confusion_matrix(outputs.labels, outputs.predictions,
                                       domain.num_classes)
  return {name: float(value) for name, value in zip(
      domain.class_names, metrics.per_class_accuracy(confusion))}


def _model_labels(domain, class_names):
  """The domain's labels as the model's class ids (matched by name, so a
  domain may list its classes in another order, or only some of them)."""
  if not domain.has_labels:
    raise ValueError(
        f"domain {domain.name!r} has unlabelled examples; evaluation needs a "
        "label for every example")
  ids = {name: i for i, name in enumerate(class_names)}
  unknown = [name for name in domain.class_names if name not in ids]
  if unknown:
    raise ValueError(
        f"domain {domain.name!r} has classes {unknown} that the model does "
        f"not know; the model's classes are {list(class_names)}")
  return np.array([ids[name] for name in domain.class_names], np.int64)


def predict_saved_model(export_dir, domain, batch_size=128):
  """Runs an export's `serving_default` signature over a domain.

  Images go through the evaluation transform stored in the export, the
  same resize its `serve_image_bytes` signature applies.

  Args:
    export_dir: a version folder, e.g. `saved_models/default/1`.
    domain: a labelled image `Domain` whose class names the export knows.
    batch_size: images per call.

  Returns:
    `Predictions`.
  """
  if domain.is_features:
    raise ValueError(
        f"domain {domain.name!r} holds features; an export takes images")
  try:
    loaded = tf.saved_model.load(export_dir)
  except Exception as error:  # pylint: disable=broad-except
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    raise ValueError(f"{export_dir!r} cannot be loaded as a SavedModel "
                     f"(truncated or corrupt?): {first_line}") from error
  class_names = serving.exported_class_names(loaded)
  to_model = _model_labels(domain, class_names)
  serve = loaded.signatures[serving.IMAGES_SIGNATURE]
  labels, predictions = [], []
  for images, batch_labels, _ in pipeline.eval_dataset(
      domain, batch_size, serving.exported_transform(loaded)):
    predictions.append(serve(images=images)["class_id"].numpy())
    labels.append(batch_labels.numpy())
  return Predictions(to_model[np.concatenate(labels)],
                     np.concatenate(predictions), class_names)


def predict_keras_model(model_dir, domain, batch_size=128):
  """Runs a run's `model.keras` in inference mode over a domain.

  Args:
    model_dir: the run directory (`model.keras`, `classes.json`, and
      `transform.json` when the model takes images).
    domain: a labelled `Domain` whose class names the run knows: images,
      or features for a model trained on features.
    batch_size: examples per step.

  Returns:
    `Predictions`.
  """
  model = run_files.load_model(model_dir)
  class_names = run_files.read_class_names(model_dir)
  to_model = _model_labels(domain, class_names)
  transform = run_files.read_transform(model_dir)
  takes_features = model.backbone is None
  backbone = run_files.load_backbone(model_dir) if takes_features else None
  if backbone is not None and not domain.is_features:
    # The heads were trained on a frozen backbone's features: embed first.
    domain = feature_cache.backbone_features(domain, backbone, transform,
                                             batch_size)
  if takes_features != domain.is_features:
    raise ValueError(
        f"the model takes {'features' if takes_features else 'images'} but "
        f"domain {domain.name!r} holds "
        f"{'features' if domain.is_features else 'images'}")
  if takes_features:
    transform = None
  elif transform is None:  # A run from before transform.json was written.
    transform = transforms.ImageTransform(
        image_size=model.input_shape_[0], channels=model.input_shape_[-1])
  outputs = inference.extract(
      model, pipeline.eval_dataset(domain, batch_size, transform))
  return Predictions(to_model[outputs.labels], outputs.predictions,
                     class_names)


def build_report(predictions):
  """Top-1, mean per-class accuracy and the confusion matrix.

  Args:
    predictions: `Predictions`.

  Returns:
    A `Report`.
  """
  names = list(predictions.class_names)
  confusion = metrics.confusion_matrix(predictions.labels,
                                       predictions.predictions, len(names))
  summary = pd.DataFrame([{
      "examples": int(confusion.sum()),
      "top1_accuracy": metrics.top1_accuracy(confusion),
      "mean_per_class_accuracy": metrics.mean_per_class_accuracy(confusion),
  }])
  per_class = pd.DataFrame({
      "class": names,
      "examples": confusion.sum(axis=1),
      "correct": np.diag(confusion),
      "accuracy": metrics.per_class_accuracy(confusion),
  })
  confusion = pd.DataFrame(
      confusion, index=pd.Index(names, name="true_class"),
      columns=pd.Index(names, name="predicted_class"))
  return Report(summary, per_class, confusion)


def write_report(report, output_dir):
  """Writes the report's tables as CSV files into `output_dir`.

  Args:
    report: a `Report`.
    output_dir: created if missing; existing report files are replaced.

  Returns:
    A dict from table name (`summary`, `per_class`, `confusion`) to path.
  """
  os.makedirs(output_dir, exist_ok=True)
  paths = {"summary": os.path.join(output_dir, SUMMARY_FILE),
           "per_class": os.path.join(output_dir, PER_CLASS_FILE),
           "confusion": os.path.join(output_dir, CONFUSION_FILE)}
  report.summary.to_csv(paths["summary"], index=False)
  report.per_class.to_csv(paths["per_class"], index=False)
  report.confusion.to_csv(paths["confusion"])
  return paths


def format_report(report):
  """The report as printable text tables."""
  with pd.option_context("display.width", 200, "display.max_columns", 100,
                         "display.float_format", "{:.4f}".format):
    return "\n\n".join([
        report.summary.to_string(index=False),
        report.per_class.to_string(index=False),
        "Confusion matrix (rows: true class, columns: predicted class)\n"
        + report.confusion.to_string(),
    ])
