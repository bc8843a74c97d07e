"""What a run writes into its directory: metrics CSV, TensorBoard, checkpoints."""

import os

import keras
import pandas as pd


class MetricsCSV(keras.callbacks.Callback):
  """Writes every epoch's logs to `path` as CSV with pandas, one row per
  epoch, rewritten atomically so a crash never leaves a torn file."""

  def __init__(self, path):
    super().__init__()
    self.path = path
    self.rows = []

  def on_epoch_end(self, epoch, logs=None):
    self.rows.append({"epoch": epoch, **(logs or {})})
    staging = self.path + ".tmp"
    pd.DataFrame(self.rows).to_csv(staging, index=False)
    os.replace(staging, self.path)


def run_callbacks(model_dir):
  """The logging callbacks of a run, after the ones that add to the logs."""
  return [
      MetricsCSV(os.path.join(model_dir, "metrics.csv")),
      keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
  ]
