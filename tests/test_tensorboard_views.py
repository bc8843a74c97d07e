"""Tests that a short training run's TensorBoard logs hold every view."""

import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.projector import projector_config_pb2

from srdc_tf.callbacks import tensorboard_views
from srdc_tf.models import srdc_model

import serving_testlib as lib

EVERYTHING = {event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0,
              event_accumulator.HISTOGRAMS: 0}


def _run(name):
  settings, _, _ = lib.trained_run()
  accumulator = event_accumulator.EventAccumulator(
      os.path.join(settings.model_dir, "logs", name), size_guidance=EVERYTHING)
  accumulator.Reload()
  return accumulator


def _plugin_steps(accumulator, plugin):
  """Tag -> steps of the tensor summaries of one TensorBoard plugin."""
  return {tag: [event.step for event in accumulator.Tensors(tag)]
          for tag in accumulator.Tags()["tensors"]
          if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == plugin}


def test_every_epoch_value_is_a_scalar():
  train = _plugin_steps(_run("train"), "scalars")
  expected = ["loss", *srdc_model.LOSS_TERMS, "lambda", "learning_rate",
              "source_accuracy", "kmeans_accuracy", "kmeans_agreement",
              "classifier_accuracy", "source_weight_mean"]
  for name in expected:
    assert train.get(f"epoch_{name}") == [0, 1], (name, sorted(train))
  validation = _plugin_steps(_run("validation"), "scalars")
  assert validation["epoch_target_accuracy"] == [0, 1]


def test_source_weight_histogram_and_confusion_images():
  views = _run(tensorboard_views.RUN_NAME)
  histograms = _plugin_steps(views, "histograms")
  assert histograms[tensorboard_views.SOURCE_WEIGHTS_TAG] == [0, 1]
  # In the first epoch every source weight is 1: the histogram holds all
  # 60 source examples at 1.
  first = tf.make_ndarray(views.Tensors(
      tensorboard_views.SOURCE_WEIGHTS_TAG)[0].tensor_proto)
  assert first[:, 2].sum() == 6 * lib.EXAMPLES_PER_CLASS
  assert first[first[:, 2] > 0, 0].min() == pytest.approx(1.0)
  images = _plugin_steps(views, "images")
  # One per epoch, and the trained model's after the last one.
  assert images[tensorboard_views.CONFUSION_TAG] == [0, 1, 2]
  width, height, png = tf.make_ndarray(views.Tensors(
      tensorboard_views.CONFUSION_TAG)[-1].tensor_proto)
  decoded = tf.io.decode_png(png).numpy()
  assert decoded.shape == (int(height), int(width), 3)


def test_projector_view():
  settings, data, _ = lib.trained_run()
  folder = os.path.join(settings.model_dir, "logs", tensorboard_views.RUN_NAME)
  config = projector_config_pb2.ProjectorConfig()
  with open(os.path.join(folder, "projector_config.pbtxt")) as f:
    text_format.Parse(f.read(), config)
  (embedding,) = config.embeddings
  assert embedding.tensor_name == tensorboard_views.EMBEDDING_TENSOR
  with open(os.path.join(folder, embedding.metadata_path)) as f:
    rows = [line.rstrip("\n").split("\t") for line in f]
  assert rows[0] == ["domain", "label", "prediction"]
  points = len(data.source) + len(data.target)  # Under the cap of 2000.
  assert len(rows) == 1 + points
  assert [row[0] for row in rows[1:]].count("target") == len(data.target)
  assert {row[1] for row in rows[1:]} <= set(lib.CLASS_NAMES)
  # The projector reads the latest checkpoint in the folder: the trained
  # model's (step 2).
  checkpoint = tf.train.latest_checkpoint(folder)
  assert checkpoint.endswith("-2")
  values = tf.train.load_checkpoint(checkpoint).get_tensor(
      embedding.tensor_name)
  assert values.shape == (points, lib.BOTTLENECK)
  assert np.all(np.isfinite(values))


def test_projector_points_are_capped_and_shared():
  source, target = tensorboard_views.select_projector_points(10_000, 300, 2000)
  assert (len(source), len(target)) == (1700, 300)
  assert len(np.unique(source)) == 1700 and source.max() < 10_000
  source, target = tensorboard_views.select_projector_points(50, 40, 2000)
  assert (len(source), len(target)) == (50, 40)
  with pytest.raises(ValueError, match="max_points must be > 0, got 0"):
    tensorboard_views.select_projector_points(5, 5, 0)


def test_confusion_image_shades_by_row_share():
  image = tensorboard_views.confusion_matrix_image(
      np.array([[9, 1], [0, 5]]), ["a", "b"], caption="test")
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  colours = {tuple(pixel) for pixel in image.reshape(-1, 3).tolist()}
  # Row b is all in one cell: full share, the darkest blue. Row a's 9 of 10
  # is a little lighter, and cells of share 0 stay white.
  assert (8, 48, 107) in colours
  assert (32, 68, 121) in colours
  assert (255, 255, 255) in colours
  big = tensorboard_views.confusion_matrix_image(np.eye(300, dtype=int),
                                                 [str(i) for i in range(300)])
  assert max(big.shape[:2]) < 1200  # 300 classes still fit a screen.
  with pytest.raises(ValueError, match=r"shape \(2, 3\) and 2 names"):
    tensorboard_views.confusion_matrix_image(np.zeros((2, 3)), ["a", "b"])
