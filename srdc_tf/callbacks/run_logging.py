"""What a run writes into its directory: metrics CSV, TensorBoard, checkpoints."""

import os

import keras
import pandas as pd

from srdc_tf.callbacks import tensorboard_views


class MetricsCSV(keras.callbacks.Callback):
  """Writes every epoch's logs to `path` as CSV with pandas, one row per
  epoch, rewritten atomically so a crash never leaves a torn file.

  A resumed run keeps the rows of the epochs before the one it starts
  with, which the file already holds."""

  def __init__(self, path):
    super().__init__()
    self.path = path
    self.rows = []
    self._started = False

  def on_epoch_begin(self, epoch, logs=None):
    if self._started:
      return
    self._started = True
    if os.path.isfile(self.path):
      earlier = pd.read_csv(self.path)
      self.rows = [row for row in earlier.to_dict("records")
                   if row.get("epoch", epoch) < epoch]

  def on_epoch_end(self, epoch, logs=None):
    self.rows.append({"epoch": epoch, **(logs or {})})
    staging = self.path + ".tmp"
    pd.DataFrame(self.rows).to_csv(staging, index=False)
    os.replace(staging, self.path)


def run_callbacks(model_dir, epoch_state=None, class_names=None):
  """The logging callbacks of a run, after the ones that add to the logs.

  Args:
    model_dir: the run directory.
    epoch_state: the run's `EpochStateCallback`, if any; with it (and
      `class_names`) TensorBoard also shows the source-weight histogram, the
      target confusion matrix and the embedding projector.
    class_names: the class names, in label order.

  Returns:
    A list of callbacks.
  """
  log_dir = os.path.join(model_dir, "logs")
  callbacks = [
      MetricsCSV(os.path.join(model_dir, "metrics.csv")),
      keras.callbacks.TensorBoard(log_dir),
  ]
  if epoch_state is not None and class_names is not None:
    callbacks.append(tensorboard_views.TensorBoardViews(
        log_dir, epoch_state, class_names))
  return callbacks
