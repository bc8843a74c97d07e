"""Keeps the weights of the best-scored epoch so far, for model selection."""

import dataclasses

from absl import logging
import keras
import numpy as np

from srdc_tf import selection


@dataclasses.dataclass(frozen=True)
class Selected:
  """The epoch a run keeps.

  Attributes:
    select_by: the criterion used (`last` when the requested score was not
      available in this run, e.g. k-means agreement for source-only).
    epoch: the selected epoch (0-based, as metrics.csv's `epoch`).
    score: its value of the selection score (None for `last`).
    scores: all its label-free scores.
    predictions: its `[N]` target predictions.
    position: its rank among the epochs this process trained (an index
      into `fit`'s history), or None when it trained none.
    restored: whether its weights were put back into the model.
  """
  select_by: str
  epoch: int
  score: float
  scores: dict
  predictions: np.ndarray
  position: int
  restored: bool


class BestEpochWeights(keras.callbacks.Callback):
  """Copies the model's weights (`get_weights`) at the end of every epoch
  whose `select_by` score beats the best so far; `finish` puts them back
  after training. At most one copy is held (the best so far); the last
  epoch's weights are the model's own. With `select_by="last"` nothing is
  copied.

  It must come after `LabelFreeScores`, whose scores it reads.

  A run resumed from a backup (`callbacks.backup`) starts with no copy:
  the selection then only considers the epochs trained since the resume
  (the weights of earlier epochs are gone; their scores are still in
  metrics.csv). A run resumed after its last epoch keeps its last weights.

  Args:
    select_by: one of `selection.SELECT_BY`.
    scores: the run's `LabelFreeScores` callback.
    max_share: the collapse guard's share limit, for `selection.eligible`
      (None: balance alone decides which epochs collapsed).
    exclude_after_herding: whether no epoch from the run's first herding
      (`selection.herding_epoch`) on is kept. A resumed run knows only the
      epochs trained since the resume.
  """

  def __init__(self, select_by, scores, max_share=None,
               exclude_after_herding=False):
    super().__init__()
    self.select_by = selection.check_select_by(select_by)
    self.scores = scores
    self.max_share = max_share
    self.exclude_after_herding = exclude_after_herding
    self.epochs_seen = []
    self._best = None  # (epoch, value, weights, predictions)

  def on_epoch_end(self, epoch, logs=None):
    epoch = int(epoch)
    self.epochs_seen.append(epoch)
    name = selection.score_name(self.select_by)
    if name is None:
      return
    values = self.scores.epoch_scores.get(epoch, {})
    if not selection.eligible(values, self.max_share):
      return  # A collapsed epoch is never kept.
    if self.exclude_after_herding and self.herding_epoch is not None:
      return  # Nor one after a herd (this epoch is not the herd's first).
    value = values.get(name)
    best = None if self._best is None else self._best[1]
    if selection.is_better(value, best, name):
      self._best = (epoch, float(value), self.model.get_weights(),
                    np.array(self.scores.last_predictions, copy=True))

  @property
  def herding_epoch(self):
    """The epoch the run herded its target at (`selection.herding_epoch`
    of the epochs scored so far), or None."""
    return selection.herding_epoch(self.scores.epoch_scores, self.max_share)

  def finish(self, model, final_epoch):
    """Puts the selected epoch's weights back into `model`.

    Args:
      model: the trained model.
      final_epoch: the run's last epoch (0-based), for a run that trained
        no epoch in this process (resumed after its end).

    Returns:
      A `Selected`.
    """
    epoch_scores = self.scores.epoch_scores
    if not self.epochs_seen:
      values = self.scores.compute(model)
      return Selected(selection.LAST, int(final_epoch), None, values,
                      self.scores.last_predictions, None, False)
    last = self.epochs_seen[-1]
    name = selection.score_name(self.select_by)
    if name is not None and self._best is None:
      logging.info("no epoch has score %r in this run: keeping the last "
                   "epoch's weights", name)
    if name is None or self._best is None:
      return Selected(selection.LAST, last, None, dict(epoch_scores[last]),
                      self.scores.last_predictions,
                      len(self.epochs_seen) - 1, False)
    epoch, value, weights, predictions = self._best
    restored = epoch != last
    if restored:
      model.set_weights(weights)
    self._best = None  # The copy is in the model now.
    return Selected(self.select_by, epoch, value, dict(epoch_scores[epoch]),
                    predictions, self.epochs_seen.index(epoch), restored)
