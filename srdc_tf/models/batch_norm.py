"""Exact inference statistics for the bottleneck's BatchNorm.

In training, fc1's BatchNorm normalises each source batch and each target
batch by its own statistics, of augmented images. Its moving averages
(momentum 0.9: about the last ten batches) mix the two domains, follow the
weights as they change, and are statistics of augmented images, while
evaluation and the per-epoch pass see un-augmented ones. With the digit
augmentation the target accuracy of consecutive epochs swung by up to 18
points because of it (see the README). `recalibrate_bottleneck_norm`
replaces the moving averages by the exact mean and variance of fc1's output
over a whole domain in inference mode.
"""

import numpy as np
import tensorflow as tf


class RunningMoments:
  """Mean and (population) variance of rows seen batch by batch.

  Batches are merged with Chan et al.'s pairwise update in float64, so the
  result equals the moments of all rows at once, without holding them.
  """

  def __init__(self):
    self.count = 0
    self._mean = None
    self._m2 = None  # Sum of squared deviations from the mean.

  def update(self, batch):
    """Adds the rows of a `[n, d]` batch."""
    batch = np.asarray(batch, np.float64)
    if batch.ndim != 2:
      raise ValueError(f"expected a [n, d] batch, got shape {batch.shape}")
    n = batch.shape[0]
    if n == 0:
      return
    mean = batch.mean(axis=0)
    m2 = ((batch - mean) ** 2).sum(axis=0)
    if self._mean is None:
      self.count, self._mean, self._m2 = n, mean, m2
      return
    total = self.count + n
    delta = mean - self._mean
    self._mean = self._mean + delta * (n / total)
    self._m2 = self._m2 + m2 + delta ** 2 * (self.count * n / total)
    self.count = total

  @property
  def mean(self):
    self._check()
    return self._mean

  @property
  def variance(self):
    """The population variance (divided by the count, as BatchNorm's batch
    statistics are)."""
    self._check()
    return self._m2 / self.count

  def _check(self):
    if self._mean is None:
      raise ValueError("no rows were added")


def recalibrate_bottleneck_norm(model, dataset):
  """Sets fc1's BatchNorm moving statistics to the exact moments of fc1's
  output over `dataset`, computed in inference mode.

  Outside a replica context the model's variables read as this worker's
  copy, and the dataset is iterated whole (not distributed), so every
  worker computes and assigns the same statistics.

  Args:
    model: an `SRDCModel`.
    dataset: batches of `(input, label, index)` (un-augmented images, or
      cached features).

  Returns:
    `(mean, variance)`, float32 arrays of shape `[bottleneck_dim]`.
  """
  project = getattr(model, "_srdc_bottleneck_fn", None)
  if project is None:

    def _project(inputs):
      f = inputs if model.backbone is None else model.backbone(
          inputs, training=False)
      return tf.cast(model.fc1(f), tf.float32)

    project = tf.function(_project, reduce_retracing=True)
    model._srdc_bottleneck_fn = project  # One trace per model.
  moments = RunningMoments()
  for inputs, _, _ in dataset:
    moments.update(project(inputs).numpy())
  mean = moments.mean.astype(np.float32)
  variance = moments.variance.astype(np.float32)
  model.fc1_norm.moving_mean.assign(mean)
  model.fc1_norm.moving_variance.assign(variance)
  return mean, variance
