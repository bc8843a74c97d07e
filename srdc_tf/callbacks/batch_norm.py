"""Recalibrates the bottleneck's BatchNorm at the end of every epoch."""

import keras

from srdc_tf.models import batch_norm


class BatchNormRecalibration(keras.callbacks.Callback):
  """After the last training step of every epoch, sets fc1's BatchNorm
  inference statistics to the exact moments over one whole domain
  (`batch_norm.recalibrate_bottleneck_norm`).

  It runs before the epoch's validation, the next epoch's per-epoch state
  pass and any save, which all then use the recalibrated statistics.

  Args:
    dataset: `(input, label, index)` batches of the domain, un-augmented:
      the target for SRDC (whose target images are normalised by target
      batches in training), the source for the source-only baseline (which
      never sees the target).
  """

  def __init__(self, dataset):
    super().__init__()
    self.dataset = dataset

  def on_train_batch_end(self, batch, logs=None):
    # `steps` is the length of this `fit`'s epochs: shorter for the rest of
    # an epoch resumed in its middle, whose last step is then this one too.
    if batch + 1 == self.params["steps"]:
      batch_norm.recalibrate_bottleneck_norm(self.model, self.dataset)
