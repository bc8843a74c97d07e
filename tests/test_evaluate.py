"""Tests of srdc_tf.evaluation and the evaluate binary."""

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from srdc_tf import evaluation
from srdc_tf import run_files
from srdc_tf.data import domain as domain_lib
from srdc_tf.data import sources

import serving_testlib as lib

TARGET = "synthetic:target"


def _target():
  return sources.load_domain(
      TARGET, synthetic_examples_per_class=lib.EXAMPLES_PER_CLASS)


def _model_predictions(settings, domain):
  """The run's predictions, straight from the Keras model."""
  model = run_files.load_model(settings.model_dir)
  images = np.stack([settings.transform.eval(image).numpy()
                     for image in domain.images])
  return np.argmax(model(tf.constant(images), training=False).numpy(), 1)


def test_export_and_checkpoint_give_the_model_predictions():
  settings, _, result = lib.trained_run()
  target = _target()
  expected = _model_predictions(settings, target)
  from_export = evaluation.predict_saved_model(result["export"], target,
                                               batch_size=16)
  from_checkpoint = evaluation.predict_keras_model(settings.model_dir, target,
                                                   batch_size=16)
  for predictions in (from_export, from_checkpoint):
    np.testing.assert_array_equal(predictions.labels, target.labels)
    np.testing.assert_array_equal(predictions.predictions, expected)
    assert predictions.class_names == lib.CLASS_NAMES


def test_report_tables():
  # 2 classes named "a", "b": 3 of a (2 right), 1 of b (wrong), "c" absent.
  report = evaluation.build_report(evaluation.Predictions(
      labels=np.array([0, 0, 0, 1]), predictions=np.array([0, 0, 1, 0]),
      class_names=("a", "b", "c")))
  summary = report.summary.iloc[0]
  assert summary["examples"] == 4
  assert summary["top1_accuracy"] == pytest.approx(0.5)
  assert summary["mean_per_class_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
  assert list(report.per_class["examples"]) == [3, 1, 0]
  assert list(report.per_class["correct"]) == [2, 0, 0]
  assert np.isnan(report.per_class["accuracy"].iloc[2])
  assert report.confusion.loc["a", "b"] == 1
  assert report.confusion.loc["b", "a"] == 1
  assert report.confusion.to_numpy().sum() == 4

  paths = evaluation.write_report(report, lib.work_dir("report"))
  read = pd.read_csv(paths["confusion"], index_col=0)
  np.testing.assert_array_equal(read.to_numpy(), report.confusion.to_numpy())
  assert list(read.index) == ["a", "b", "c"]
  assert list(read.columns) == ["a", "b", "c"]
  pd.testing.assert_frame_equal(pd.read_csv(paths["summary"]), report.summary)
  text = evaluation.format_report(report)
  assert "top1_accuracy" in text and "0.5000" in text


def test_classes_are_matched_by_name():
  # The same target listing its classes backwards: labels are translated to
  # the model's class ids, so the report is unchanged.
  settings, _, _ = lib.trained_run()
  target = _target()
  k = len(target.class_names)
  reordered = dataclasses.replace(
      target, class_names=tuple(reversed(target.class_names)),
      labels=(k - 1 - target.labels).astype(np.int32))
  original = evaluation.predict_keras_model(settings.model_dir, target)
  translated = evaluation.predict_keras_model(settings.model_dir, reordered)
  np.testing.assert_array_equal(translated.labels, original.labels)
  np.testing.assert_array_equal(translated.predictions, original.predictions)


def test_unknown_classes_and_missing_labels_are_refused():
  settings, _, result = lib.trained_run()
  target = _target()
  stranger = dataclasses.replace(
      target, class_names=target.class_names[:-1] + ("hexagon",))
  with pytest.raises(ValueError, match=r"classes \['hexagon'\] that the model "
                     "does not know"):
    evaluation.predict_saved_model(result["export"], stranger)
  unlabelled = dataclasses.replace(
      target, labels=np.full(len(target), domain_lib.UNLABELLED, np.int32))
  with pytest.raises(ValueError, match="unlabelled examples"):
    evaluation.predict_keras_model(settings.model_dir, unlabelled)


@pytest.mark.e2e
def test_evaluate_binary_prints_and_writes_the_report():
  settings, _, result = lib.trained_run()
  output_dir = lib.work_dir("evaluate")
  done = lib.run_python([
      "-m", "srdc_tf.evaluate", f"--saved_model={result['export']}",
      f"--target={TARGET}",
      f"--synthetic_examples_per_class={lib.EXAMPLES_PER_CLASS}",
      f"--output_dir={output_dir}"])
  assert done.returncode == 0, done.stderr
  expected = evaluation.build_report(
      evaluation.predict_keras_model(settings.model_dir, _target()))
  summary = pd.read_csv(os.path.join(output_dir, evaluation.SUMMARY_FILE))
  assert summary["model"].iloc[0] == result["export"]
  assert summary["target"].iloc[0] == TARGET
  for column in ("examples", "top1_accuracy", "mean_per_class_accuracy"):
    assert summary[column].iloc[0] == pytest.approx(
        expected.summary[column].iloc[0])
  confusion = pd.read_csv(os.path.join(output_dir, evaluation.CONFUSION_FILE),
                          index_col=0)
  np.testing.assert_array_equal(confusion.to_numpy(),
                                expected.confusion.to_numpy())
  assert os.path.isfile(os.path.join(output_dir, evaluation.PER_CLASS_FILE))
  assert "mean_per_class_accuracy" in done.stdout
  assert "Confusion matrix" in done.stdout


@pytest.mark.e2e
def test_evaluate_binary_needs_exactly_one_model():
  done = lib.run_python(["-m", "srdc_tf.evaluate", f"--target={TARGET}",
                         "--output_dir=/tmp/unused", "--saved_model=a",
                         "--model_dir=b"])
  assert done.returncode != 0
  assert "exactly one of --saved_model and --model_dir" in done.stderr
