"""Tests of srdc_tf.metrics against hand-computed values."""

import numpy as np
import pytest

from srdc_tf import metrics

# K = 3. Class 0: 2 examples (1 right), class 1: 3 (2 right), class 2: 1
# (right): 4 of 6 right; per class 1/2, 2/3, 1; mean 13/18.
LABELS = [0, 0, 1, 1, 1, 2]
PREDICTIONS = [0, 1, 1, 1, 0, 2]
CONFUSION = [[1, 1, 0],
             [1, 2, 0],
             [0, 0, 1]]


def test_confusion_matrix_by_hand():
  confusion = metrics.confusion_matrix(LABELS, PREDICTIONS, 3)
  np.testing.assert_array_equal(confusion, CONFUSION)
  assert confusion.dtype == np.int64


def test_accuracies_by_hand():
  assert metrics.top1_accuracy(CONFUSION) == pytest.approx(4 / 6)
  np.testing.assert_allclose(metrics.per_class_accuracy(CONFUSION),
                             [1 / 2, 2 / 3, 1.0])
  assert metrics.mean_per_class_accuracy(CONFUSION) == pytest.approx(13 / 18)


def test_mean_per_class_differs_from_top1_on_imbalance():
  # 9 of class 0 and 1 of class 1, all predicted 0: top-1 0.9, but class 1
  # is never right: mean per-class (1 + 0) / 2.
  confusion = metrics.confusion_matrix([0] * 9 + [1], [0] * 10, 2)
  np.testing.assert_array_equal(confusion, [[9, 0], [1, 0]])
  assert metrics.top1_accuracy(confusion) == pytest.approx(0.9)
  assert metrics.mean_per_class_accuracy(confusion) == pytest.approx(0.5)


def test_class_without_examples_is_left_out_of_the_mean():
  # Class 2 has no example (only predicted once, wrongly): its accuracy is
  # undefined; the mean is over classes 0 and 1: (1/2 + 1) / 2.
  confusion = metrics.confusion_matrix([0, 0, 1], [0, 2, 1], 3)
  np.testing.assert_array_equal(confusion, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
  per_class = metrics.per_class_accuracy(confusion)
  np.testing.assert_allclose(per_class[:2], [0.5, 1.0])
  assert np.isnan(per_class[2])
  assert metrics.mean_per_class_accuracy(confusion) == pytest.approx(0.75)
  assert metrics.top1_accuracy(confusion) == pytest.approx(2 / 3)


def test_matches_a_loop_on_random_data():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 200)
  predictions = rng.integers(0, 5, 200)
  expected = np.zeros((5, 5), np.int64)
  for label, prediction in zip(labels, predictions):
    expected[label, prediction] += 1
  confusion = metrics.confusion_matrix(labels, predictions, 5)
  np.testing.assert_array_equal(confusion, expected)
  assert metrics.top1_accuracy(confusion) == pytest.approx(
      np.mean(labels == predictions))
  assert metrics.mean_per_class_accuracy(confusion) == pytest.approx(
      np.mean([np.mean(predictions[labels == k] == k) for k in range(5)]))


@pytest.mark.parametrize("labels, predictions, num_classes, message", [
    ([0, 1], [0], 2, "2 labels but 1 predictions"),
    ([0, 3], [0, 1], 3, r"labels must be in \[0, 3\), got \[3\]"),
    ([0, 1], [-1, 1], 2, r"predictions must be in \[0, 2\), got \[-1\]"),
    ([0.0, 1.0], [0, 1], 2, "labels must be integers, got dtype float64"),
    ([[0, 1]], [[0, 1]], 2, r"labels must be 1-D, got shape \(1, 2\)"),
    ([0], [0], 0, "num_classes must be > 0, got 0"),
])
def test_bad_inputs_name_the_value(labels, predictions, num_classes, message):
  with pytest.raises(ValueError, match=message):
    metrics.confusion_matrix(labels, predictions, num_classes)


def test_empty_matrix_has_no_accuracy():
  empty = metrics.confusion_matrix([], [], 2)
  with pytest.raises(ValueError, match="no example"):
    metrics.top1_accuracy(empty)
  with pytest.raises(ValueError, match="no example"):
    metrics.mean_per_class_accuracy(empty)
