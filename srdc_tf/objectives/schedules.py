"""Per-epoch schedules: the penalty ramp lambda(e) and the lr annealing."""

import math


def _check_epoch(epoch, epochs):
  if epochs <= 0:
    raise ValueError(f"epochs must be > 0, got {epochs!r}")
  if epoch < 0:
    raise ValueError(f"epoch must be >= 0, got {epoch!r}")


def penalty_ramp(epoch, epochs):
  """`lambda(e) = 2 / (1 + exp(-10 e / E)) - 1`, 0 at the first epoch.

  Args:
    epoch: the epoch, counted from 0.
    epochs: the number of epochs E.

  Returns:
    A float in [0, 1).
  """
  _check_epoch(epoch, epochs)
  return 2.0 / (1.0 + math.exp(-10.0 * epoch / epochs)) - 1.0


def dao_learning_rate(epoch, base_lr, epochs):
  """Annealed learning rate `lr / (1 + 10 e / E) ** 0.75`.

  Args:
    epoch: the epoch, counted from 0.
    base_lr: the learning rate at epoch 0.
    epochs: the number of epochs E.

  Returns:
    The learning rate of this epoch, a float.
  """
  _check_epoch(epoch, epochs)
  return base_lr / (1.0 + 10.0 * epoch / epochs) ** 0.75
