"""Per-epoch schedules as Keras callbacks: the learning-rate annealing, and
when a backbone starts to train."""

import keras

from srdc_tf import objectives

MOMENTUM_CONVENTIONS = ("keras", "pytorch")


class DaoLearningRate(keras.callbacks.LearningRateScheduler):
  """Sets `lr / (1 + 10 e / E) ** 0.75` at the start of every epoch (and
  logs it as `learning_rate`).

  Keras' SGD keeps the learning rate inside its momentum buffer
  (`m = mu m - lr g; w += m`), PyTorch's outside (`b = mu b + g;
  w -= lr b`). The two agree while the rate is constant and differ for the
  steps right after it changes. With `momentum_convention="pytorch"` the
  buffers are rescaled by `new_lr / old_lr` at each change, which makes
  the Keras update equal PyTorch's (`m = -lr b` holds again).

  Args:
    base_lr: learning rate of epoch 0.
    epochs: number of epochs E.
    momentum_convention: "keras" or "pytorch".
  """

  def __init__(self, base_lr, epochs, momentum_convention="keras"):
    if base_lr <= 0:
      raise ValueError(f"lr must be > 0, got {base_lr!r}")
    if momentum_convention not in MOMENTUM_CONVENTIONS:
      raise ValueError(f"momentum_convention must be one of "
                       f"{MOMENTUM_CONVENTIONS}, got {momentum_convention!r}")
    super().__init__(lambda epoch, lr: objectives.dao_learning_rate(
        epoch, base_lr, epochs))
    self.momentum_convention = momentum_convention

  def on_epoch_begin(self, epoch, logs=None):
    old = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
    super().on_epoch_begin(epoch, logs)
    new = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
    momentums = getattr(self.model.optimizer, "momentums", None)
    if self.momentum_convention == "pytorch" and momentums and new != old:
      for buffer in momentums:
        buffer.assign(buffer * (new / old))


def dao_learning_rate_scheduler(base_lr, epochs, momentum_convention="keras"):
  """The `DaoLearningRate` callback (see there for the arguments)."""
  return DaoLearningRate(base_lr, epochs, momentum_convention)


class BackboneRelease(keras.callbacks.Callback):
  """Lets the model's backbone train from epoch
  `model.backbone_frozen_epochs` on (`--backbone_frozen_epochs`): sets
  `model.backbone_trains` at the start of every epoch, so that a run
  resumed from a backup sets it as the first did."""

  def on_epoch_begin(self, epoch, logs=None):
    if self.model.backbone_frozen_epochs:
      self.model.backbone_trains.assign(
          1.0 if epoch >= self.model.backbone_frozen_epochs else 0.0)
