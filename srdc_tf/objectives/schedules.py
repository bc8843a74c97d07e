"""Per-epoch schedules: the penalty ramp lambda(e) and the lr annealing."""

import math


def _check_epoch(epoch, epochs):
  if epochs <= 0:
    raise ValueError(f"epochs must be > 0, got {epochs!r}")
  if epoch < 0:
    raise ValueError(f"epoch must be >= 0, got {epoch!r}")


def penalty_ramp(epoch, epochs, warmup_epochs=1):
  """`lambda(e) = 2 / (1 + exp(-10 e / E)) - 1`, 0 at the first epoch.

  With `warmup_epochs` W > 1 the first W epochs train on the source alone
  (lambda 0) and the same ramp then runs over the remaining epochs:
  `lambda(e) = ramp((e - W + 1) / (E - W + 1))` for e >= W. W = 1 is the
  paper's schedule.

  Args:
    epoch: the epoch, counted from 0.
    epochs: the number of epochs E.
    warmup_epochs: W, the epochs at lambda 0, from 1 (the paper) to E.

  Returns:
    A float in [0, 1).
  """
  _check_epoch(epoch, epochs)
  if not 1 <= warmup_epochs <= epochs:
    raise ValueError(f"warmup_epochs must be in [1, epochs={epochs}], got "
                     f"{warmup_epochs!r}")
  if epoch < warmup_epochs:
    return 0.0
  shifted = warmup_epochs - 1
  return 2.0 / (1.0 + math.exp(
      -10.0 * (epoch - shifted) / (epochs - shifted))) - 1.0


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
