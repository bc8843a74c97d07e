"""Scores the target without its labels at the end of every epoch."""

from absl import logging
import keras
import numpy as np

from srdc_tf import scores as scores_lib
from srdc_tf.models import inference


class LabelFreeScores(keras.callbacks.Callback):
  """At every epoch end, one inference pass over the un-augmented target,
  and its label-free scores (`srdc_tf.scores.target_scores`) added to the
  logs as `score_<name>`: `score_entropy`, `score_balance`, `score_snd`,
  `score_largest_class_share`, `score_kmeans_agreement` (SRDC runs: the
  pseudo-labels of this epoch's start, in `model.target_pseudo_labels`,
  against the classifier at its end) and `score_baseline_agreement` (when
  the source-only baseline's target predictions are given). The logging
  callbacks that come after it write them into metrics.csv and
  TensorBoard.

  It must come after `BatchNormRecalibration` (which runs at the epoch's
  last step, so the scores see the recalibrated statistics, like the
  validation) and before the logging callbacks.

  `epoch_scores` (epoch -> scores) and `last_predictions` (the argmax of
  the last pass) keep what it computed for model selection. The target
  labels are never read.

  Args:
    target_data: `(input, label, index)` batches of the whole adaptation
      target, no augmentation.
    baseline_predictions: `[N]` predicted classes of the source-only
      baseline on the same target, or None.
    snd_max_samples: see `scores.soft_neighbourhood_density`.
  """

  def __init__(self, target_data, baseline_predictions=None,
               snd_max_samples=scores_lib.SND_MAX_SAMPLES):
    super().__init__()
    self.target_data = target_data
    self.baseline_predictions = (
        None if baseline_predictions is None
        else np.asarray(baseline_predictions))
    self.snd_max_samples = snd_max_samples
    self.epoch_scores = {}
    self.last_predictions = None

  def compute(self, model=None):
    """The scores of `model` (default: the trained one) as it is now.

    Returns:
      A dict from score name (without the prefix) to float; NaN for every
      score when the outputs are not finite (the divergence check, which
      runs after, stops the run with its own message).
    """
    model = model or self.model
    outputs = inference.extract(model, self.target_data)
    logits = outputs.logits
    predictions = outputs.predictions
    self.last_predictions = predictions
    if not np.all(np.isfinite(logits)):
      logging.warning("the target logits are not finite: label-free scores "
                      "set to NaN")
      return {name: float("nan") for name in (
          scores_lib.ENTROPY, scores_lib.BALANCE, scores_lib.SND,
          scores_lib.LARGEST_CLASS_SHARE)}
    pseudo_labels = None
    if not getattr(model, "source_only", True):
      pseudo_labels = np.asarray(model.target_pseudo_labels.numpy())
    baseline = self.baseline_predictions
    if baseline is not None and len(baseline) != len(predictions):
      logging.warning("the baseline's target predictions have %d samples, "
                      "the target %d: no score_baseline_agreement",
                      len(baseline), len(predictions))
      baseline = self.baseline_predictions = None
    return scores_lib.target_scores(
        logits, pseudo_labels=pseudo_labels, baseline_predictions=baseline,
        snd_max_samples=self.snd_max_samples)

  def on_epoch_end(self, epoch, logs=None):
    values = self.compute()
    self.epoch_scores[int(epoch)] = values
    if logs is not None:
      logs.update({scores_lib.SCORE_PREFIX + name: value
                   for name, value in values.items()})
