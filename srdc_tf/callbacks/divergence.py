"""Stops a run whose loss stops being a number."""

import math

import keras


class TrainingDivergedError(RuntimeError):
  """The loss or the weights became NaN or infinite; the message says
  where, and which checkpoint is the last good one."""


def position(step, steps_per_epoch, epochs):
  """"epoch e/E, step s/S (global step g)", 1-based, for messages.

  Args:
    step: global steps done, counting the one being described (>= 1).
    steps_per_epoch: S.
    epochs: E.
  """
  epoch, in_epoch = divmod(step - 1, steps_per_epoch)
  return (f"epoch {epoch + 1}/{epochs}, step {in_epoch + 1}/{steps_per_epoch}"
          f" (global step {step})")


class StopOnNonFiniteLoss(keras.callbacks.Callback):
  """Raises `TrainingDivergedError` at the first step whose loss is NaN or
  infinite, naming the epoch and step.

  Unlike Keras' `TerminateOnNaN`, which only ends `fit` (after which the
  run would save the broken model), this stops the run. It must come before
  the `TrainingBackup` in the callback list, so that the step that diverged
  is never backed up: the last backup stays the last good state.

  Args:
    steps_per_epoch: S.
    epochs: E.
    backup: the run's `TrainingBackup`, to name the last good checkpoint.
  """

  def __init__(self, steps_per_epoch, epochs, backup=None):
    super().__init__()
    self.steps_per_epoch = int(steps_per_epoch)
    self.epochs = int(epochs)
    self.backup = backup

  def on_train_batch_end(self, batch, logs=None):
    loss = (logs or {}).get("loss")
    if loss is None or math.isfinite(float(loss)):
      return
    # The optimizer counts every step of the run, also across a resume.
    step = int(self.model.optimizer.iterations.numpy())
    last_good = (self.backup.describe_latest() if self.backup is not None
                 else "no checkpoint is kept")
    raise TrainingDivergedError(
        f"the loss became {float(loss)} at "
        f"{position(step, self.steps_per_epoch, self.epochs)}; training "
        f"stopped. Last good checkpoint: {last_good}. Try a lower --lr.")
