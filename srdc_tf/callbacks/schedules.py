"""The per-epoch learning-rate annealing as a Keras callback."""

import keras

from srdc_tf import objectives


def dao_learning_rate_scheduler(base_lr, epochs):
  """A `LearningRateScheduler` that sets `lr / (1 + 10 e / E) ** 0.75` at
  the start of every epoch (and logs it as `learning_rate`).

  Args:
    base_lr: learning rate of epoch 0.
    epochs: number of epochs E.

  Returns:
    A `keras.callbacks.LearningRateScheduler`.
  """
  if base_lr <= 0:
    raise ValueError(f"lr must be > 0, got {base_lr!r}")
  return keras.callbacks.LearningRateScheduler(
      lambda epoch, lr: objectives.dao_learning_rate(epoch, base_lr, epochs))
