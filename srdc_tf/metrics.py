"""Classification metrics of a labelled evaluation: pure NumPy, no I/O.

Domain adaptation papers report top-1 accuracy (Office-31, Office-Home) or
the mean of per-class accuracies (VisDA-2017, where classes are
imbalanced); both come from the confusion matrix.
"""

import numpy as np


def _as_labels(values, name, num_classes):
  values = np.asarray(values)
  if values.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
  if values.size and not np.issubdtype(values.dtype, np.integer):
    raise ValueError(f"{name} must be integers, got dtype {values.dtype}")
  if values.size and (values.min() < 0 or values.max() >= num_classes):
    bad = sorted(set(values[(values < 0) | (values >= num_classes)].tolist()))
    raise ValueError(f"{name} must be in [0, {num_classes}), got {bad[:10]}")
  return values.astype(np.int64)


def confusion_matrix(labels, predictions, num_classes):
  """Counts of (true class, predicted class) pairs.

  Args:
    labels: `[N]` true classes in [0, num_classes).
    predictions: `[N]` predicted classes in [0, num_classes).
    num_classes: K, > 0.

  Returns:
    `[K, K]` int64: entry `[i, j]` counts examples of class i predicted j.

  Raises:
    ValueError: shapes differ, or a value is out of range.
  """
  if int(num_classes) <= 0:
    raise ValueError(f"num_classes must be > 0, got {num_classes!r}")
  labels = _as_labels(labels, "labels", num_classes)
  predictions = _as_labels(predictions, "predictions", num_classes)
  if labels.shape != predictions.shape:
    raise ValueError(
        f"{labels.shape[0]} labels but {predictions.shape[0]} predictions")
  flat = np.bincount(labels * num_classes + predictions,
                     minlength=num_classes * num_classes)
  return flat.reshape(num_classes, num_classes)


def top1_accuracy(confusion):
  """Fraction of all examples predicted correctly.

  Args:
    confusion: a `[K, K]` confusion matrix.

  Returns:
    A float in [0, 1].

  Raises:
    ValueError: the matrix counts no example.
  """
  confusion = np.asarray(confusion)
  total = confusion.sum()
  if total == 0:
    raise ValueError("the confusion matrix counts no example")
  return float(np.trace(confusion) / total)


def per_class_accuracy(confusion):
  """Recall of each true class.

  Args:
    confusion: a `[K, K]` confusion matrix.

  Returns:
    `[K]` float64: correct / examples of each class, NaN for a class without
    examples.
  """
  confusion = np.asarray(confusion)
  support = confusion.sum(axis=1)
  correct = np.diag(confusion).astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(support > 0, correct / support, np.nan)


def mean_per_class_accuracy(confusion):
  """Mean of the per-class accuracies, over the classes that have examples
  (a class absent from the evaluation set has no accuracy to average).

  Args:
    confusion: a `[K, K]` confusion matrix.

  Returns:
    A float in [0, 1].

  Raises:
    ValueError: the matrix counts no example.
  """
  accuracies = per_class_accuracy(confusion)
  if np.all(np.isnan(accuracies)):
    raise ValueError("the confusion matrix counts no example")
  return float(np.nanmean(accuracies))
