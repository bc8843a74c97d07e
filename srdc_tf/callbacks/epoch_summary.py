"""One line per epoch with the numbers that matter, instead of Keras' line
of every logged value (all of which stay in metrics.csv and TensorBoard)."""

import time

import keras

from srdc_tf import console

# (log key, label, format) in the order printed; a key missing from the
# logs is left out (lambda of the baseline, the accuracy of an unlabelled
# target). `loss` is the total: it grows with lambda as the target terms
# are switched on (README, "Reading the output").
_COLUMNS = (
    ("loss", "loss", "{:.3f}"),
    ("source_output_loss", "L_s", "{:.3f}"),
    ("target_output_loss", "L_t", "{:.3f}"),
    ("lambda", "lambda", "{:.2f}"),
    ("learning_rate", "lr", "{:.4f}"),
    ("source_accuracy", "source acc", "{:.1%}"),
    ("val_target_accuracy", "target acc", "{:.1%}"),
)
# Left out of a source-only line: it trains on the source alone.
_SOURCE_ONLY_HIDDEN = ("target_output_loss", "lambda")


def format_epoch(name, epoch, epochs, logs, seconds, source_only=False):
  """`srdc epoch 3/20  12s  loss 9.702  L_s 1.105  ...`.

  Args:
    name: the run's method (e.g. `srdc`, `source_only`).
    epoch: the epoch, 0-based.
    epochs: the number of epochs.
    logs: the epoch's logs.
    seconds: the epoch's duration.
    source_only: leave out the target terms.

  Returns:
    The line, without a newline.
  """
  width = len(str(epochs))
  parts = [f"{name} epoch {epoch + 1:>{width}}/{epochs}", f"{seconds:.0f}s"]
  for key, label, form in _COLUMNS:
    if key in (logs or {}) and not (source_only
                                    and key in _SOURCE_ONLY_HIDDEN):
      parts.append(f"{label} {form.format(float(logs[key]))}")
  # A labelled target scores the epoch; an unlabelled one only these.
  if "val_target_accuracy" not in (logs or {}) and "score_balance" in (
      logs or {}):
    parts.append(f"balance {float(logs['score_balance']):.2f}")
  return "  ".join(parts)


class EpochSummary(keras.callbacks.Callback):
  """Prints `format_epoch` at every epoch end (`console.line`, level >= 1).

  Args:
    name: the run's method.
    epochs: the number of epochs.
    source_only: whether the run is the source-only baseline.
  """

  def __init__(self, name, epochs, source_only=False):
    super().__init__()
    self.name = name
    self.epochs = epochs
    self.source_only = source_only
    self._start = time.monotonic()

  def on_train_begin(self, logs=None):
    self._start = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    # Since the last epoch ended: the per-epoch state pass included.
    now = time.monotonic()
    console.line(format_epoch(self.name, epoch, self.epochs, logs,
                              now - self._start, self.source_only))
    self._start = now
