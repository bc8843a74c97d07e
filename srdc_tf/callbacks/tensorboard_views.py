"""TensorBoard views of SRDC's per-epoch state, beside Keras' scalars.

Keras' `TensorBoard` callback already writes every value of the epoch logs
(loss terms, lambda, learning rate, accuracies, k-means accuracy and
agreement) as scalars. What it cannot show is the state behind them; this
callback writes it into its own run, `<logs>/epoch_state`:

- a histogram of the source weights (soft source selection),
- an image of the target confusion matrix (true labels against the
  classifier's predictions),
- an embedding projector view of the feature `h` of target and source
  examples, with domain, true class and predicted class as metadata.

Step `e` shows the state computed at the start of epoch `e`, the state that
epoch trained with, as do the `kmeans_*`, `classifier_accuracy` and
`source_weight_mean` scalars at step `e`. After the last epoch one more pass
writes the trained model's confusion matrix and embedding at step E.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont
from tensorboard.plugins import projector

from srdc_tf import metrics
from srdc_tf.models import inference

RUN_NAME = "epoch_state"
SOURCE_WEIGHTS_TAG = "source_weights"
CONFUSION_TAG = "target_confusion_matrix"
METADATA_FILE = "metadata.tsv"
# The key `tf.train.Checkpoint(embedding=...)` stores the variable under.
EMBEDDING_TENSOR = "embedding/.ATTRIBUTES/VARIABLE_VALUE"

_LIGHT = np.array([255, 255, 255], np.float32)
_DARK = np.array([8, 48, 107], np.float32)


# === Confusion matrix picture ===

def confusion_matrix_image(confusion, class_names, caption="",
                           max_side=768):
  """Draws a confusion matrix as a heat map with counts and class names.

  Cells are shaded by their share of the row (the true class), so that
  rare classes are as readable as common ones; counts and names are drawn
  when the cells are large enough to hold them.

  Args:
    confusion: `[K, K]` counts, rows true classes, columns predictions.
    class_names: the K class names.
    caption: a line of text drawn above the matrix.
    max_side: approximate side of the grid in pixels.

  Returns:
    `[height, width, 3]` uint8 RGB image.
  """
  confusion = np.asarray(confusion)
  k = confusion.shape[0]
  if confusion.shape != (k, k) or len(class_names) != k:
    raise ValueError(
        f"need a square confusion matrix and one name per row, got shape "
        f"{confusion.shape} and {len(class_names)} names")
  cell = int(np.clip(max_side // max(k, 1), 3, 48))
  font = ImageFont.load_default()
  draw_text = cell >= 20
  row_labels = [f"{name[:18]} ({i})" for i, name in enumerate(class_names)]
  probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

  def text_size(text):
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    return right - left, bottom - top

  line_height = text_size("Ag")[1] + 4
  left_margin = (max(text_size(t)[0] for t in row_labels) + 8
                 if draw_text else 4)
  title = "rows: true class, columns: predicted class (index)"
  lines = [line for line in (caption, title) if line]
  top_margin = (len(lines) + 1) * line_height + 4
  width = max([left_margin + k * cell]
              + [text_size(line)[0] + 8 for line in lines]) + 4
  height = top_margin + k * cell + 4
  image = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(image)
  for row, line in enumerate(lines):
    draw.text((4, 2 + row * line_height), line, fill="black", font=font)
  totals = confusion.sum(axis=1, keepdims=True)
  shares = np.divide(confusion, totals, out=np.zeros(confusion.shape),
                     where=totals > 0)
  for i in range(k):
    y = top_margin + i * cell
    if draw_text:
      draw.text((4, y + (cell - line_height) // 2 + 2), row_labels[i],
                fill="black", font=font)
    for j in range(k):
      x = left_margin + j * cell
      colour = _LIGHT + shares[i, j] * (_DARK - _LIGHT)
      draw.rectangle([x, y, x + cell - 1, y + cell - 1],
                     fill=tuple(int(c) for c in colour), outline=(200, 200, 200))
      if draw_text:
        text = str(int(confusion[i, j]))
        w, h = text_size(text)
        if w < cell - 2:
          draw.text((x + (cell - w) // 2, y + (cell - h) // 2), text,
                    fill="white" if shares[i, j] > 0.5 else "black",
                    font=font)
  if draw_text:
    for j in range(k):
      w, _ = text_size(str(j))
      draw.text((left_margin + j * cell + (cell - w) // 2,
                 top_margin - line_height), str(j), fill="black", font=font)
  return np.asarray(image, dtype=np.uint8)


# === Projector points ===

def select_projector_points(num_source, num_target, max_points, seed=0):
  """Which examples the projector shows: at most `max_points`, half from
  each domain (a domain with fewer examples leaves its share to the
  other), each a random subset.

  Args:
    num_source: source examples.
    num_target: target examples.
    max_points: the cap, > 0.
    seed: seed of the subsets.

  Returns:
    `(source_indices, target_indices)`, sorted int arrays.
  """
  if max_points <= 0:
    raise ValueError(f"max_points must be > 0, got {max_points!r}")
  source_count = min(num_source, max_points // 2)
  target_count = min(num_target, max_points - source_count)
  source_count = min(num_source, max_points - target_count)
  rng = np.random.default_rng(seed)
  target = np.sort(rng.choice(num_target, target_count, replace=False))
  source = np.sort(rng.choice(num_source, source_count, replace=False))
  return source, target


def _tsv_cell(text):
  # Tabs and newlines would break the metadata table.
  return " ".join(str(text).split())


class TensorBoardViews(keras.callbacks.Callback):
  """Writes the source-weight histogram, the target confusion matrix and
  the embedding projector view (see the module docstring).

  Place it after `epoch_state` in the callback list, so that the state it
  reads is the one computed for the current epoch.

  Args:
    log_dir: the run's TensorBoard folder (`<model_dir>/logs`); views go to
      its `epoch_state` subfolder.
    epoch_state: the run's `EpochStateCallback`, whose `last_state` and
      `last_outputs` are shown (and whose datasets the final pass reads).
    class_names: the K class names.
    max_projector_points: cap on the examples in the projector.
    final_pass: after training, run the model once more to show the
      trained model's confusion matrix and embedding.
    seed: seed of the projector subset.
  """

  def __init__(self, log_dir, epoch_state, class_names,
               max_projector_points=2000, final_pass=True, seed=0):
    super().__init__()
    self.log_dir = os.path.join(log_dir, RUN_NAME)
    self.epoch_state = epoch_state
    self.class_names = tuple(str(name) for name in class_names)
    self.max_projector_points = int(max_projector_points)
    if self.max_projector_points <= 0:
      raise ValueError(
          f"max_projector_points must be > 0, got {max_projector_points!r}")
    self.final_pass = bool(final_pass)
    self.seed = int(seed)
    self._writer = None
    self._points = None
    self._embedding = None
    self._manager = None
    self._last_epoch = None

  def on_train_begin(self, logs=None):
    os.makedirs(self.log_dir, exist_ok=True)
    self._writer = tf.summary.create_file_writer(self.log_dir)

  def on_epoch_end(self, epoch, logs=None):
    self._last_epoch = epoch
    state = self.epoch_state.last_state
    outputs = self.epoch_state.last_outputs
    if state is None:  # Source-only: no state to show.
      return
    with self._writer.as_default():
      tf.summary.histogram(SOURCE_WEIGHTS_TAG,
                           np.asarray(state.source_weights), step=epoch)
    if outputs is not None:  # None when the pass was sharded.
      self._write_outputs(outputs, step=epoch)

  def on_train_end(self, logs=None):
    # Not conditioned on `last_outputs`: an epoch resumed from a backup
    # keeps its restored state and leaves it None.
    if self.final_pass and self._last_epoch is not None:
      outputs = (inference.extract(self.model, self.epoch_state.source_data),
                 inference.extract(self.model, self.epoch_state.target_data))
      self._write_outputs(outputs, step=self._last_epoch + 1)
    if self._writer is not None:
      self._writer.close()

  # === Writers ===

  def _write_outputs(self, outputs, step):
    source, target = outputs
    labelled = target.labels >= 0
    if labelled.any():  # An unlabelled target has no confusion matrix.
      confusion = metrics.confusion_matrix(
          target.labels[labelled], target.predictions[labelled],
          len(self.class_names))
      caption = (f"target, step {step}: top-1 "
                 f"{metrics.top1_accuracy(confusion):.1%}, mean per-class "
                 f"{metrics.mean_per_class_accuracy(confusion):.1%}")
      image = confusion_matrix_image(confusion, self.class_names, caption)
      with self._writer.as_default():
        tf.summary.image(CONFUSION_TAG, image[None], step=step)
    self._writer.flush()
    self._write_projector(source, target, step)

  def _write_projector(self, source, target, step):
    if self._points is None:
      self._points = select_projector_points(
          len(source.labels), len(target.labels), self.max_projector_points,
          self.seed)
    source_index, target_index = self._points
    features = np.concatenate([target.h[target_index],
                               source.h[source_index]]).astype(np.float32)
    rows = ["domain\tlabel\tprediction"]
    for domain, outputs, index in (("target", target, target_index),
                                   ("source", source, source_index)):
      for label, prediction in zip(outputs.labels[index],
                                   outputs.predictions[index]):
        name = self.class_names[label] if label >= 0 else "unlabelled"
        rows.append("\t".join(_tsv_cell(cell) for cell in (
            domain, name, self.class_names[prediction])))
    metadata = os.path.join(self.log_dir, METADATA_FILE)
    with open(metadata + ".tmp", "w") as f:
      f.write("\n".join(rows) + "\n")
    os.replace(metadata + ".tmp", metadata)
    if self._embedding is None:
      self._embedding = tf.Variable(features, trainable=False,
                                    name="embedding")
      self._manager = tf.train.CheckpointManager(
          tf.train.Checkpoint(embedding=self._embedding), self.log_dir,
          max_to_keep=1, checkpoint_name="embedding")
      config = projector.ProjectorConfig()
      embedding = config.embeddings.add()
      embedding.tensor_name = EMBEDDING_TENSOR
      embedding.metadata_path = METADATA_FILE
      projector.visualize_embeddings(self.log_dir, config)
    else:
      self._embedding.assign(features)
    self._manager.save(checkpoint_number=step)
