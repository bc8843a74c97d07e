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
    accuracy: its target accuracy as validated at its end
      (`val_target_accuracy`), or None when unknown (the last epoch of a
      run resumed after its end).
    restored: whether its weights were put back into the model.
  """
  select_by: str
  epoch: int
  score: float
  scores: dict
  predictions: np.ndarray
  accuracy: float
  restored: bool


@dataclasses.dataclass(frozen=True)
class _Best:
  """The best-scored epoch so far and a copy of its weights."""
  epoch: int
  value: float
  weights: list
  predictions: np.ndarray
  accuracy: float


class BestEpochWeights(keras.callbacks.Callback):
  """Copies the model's weights (`get_weights`) at the end of every epoch
  whose `select_by` score beats the best so far; `finish` puts them back
  after training. At most one copy is held (the best so far); the last
  epoch's weights are the model's own. With `select_by="last"` nothing is
  copied.

  It must come after `LabelFreeScores`, whose scores it reads.

  A backup (`callbacks.backup`) keeps the copy and every epoch's scores
  (`backup_state`); a run resumed from it (`restore_backup_state`)
  selects among all its epochs, as if it had not been interrupted.

  Args:
    select_by: one of `selection.SELECT_BY`.
    scores: the run's `LabelFreeScores` callback.
    max_share: the collapse guard's share limit, for `selection.eligible`
      (None: balance alone decides which epochs collapsed).
    exclude_after_herding: whether no epoch from the run's first herding
      (`selection.herding_epoch`) on is kept.
    preferred_from_epoch: epochs from this one on (0-based) are preferred:
      an eligible one is kept over any earlier epoch, whatever the scores;
      an earlier epoch is kept only when none of them is eligible (each
      collapsed, or came after a herd). A run with `--refinement_epochs`
      passes its last epoch, because its scores reward the epochs before
      the refinement (the target entropy rises while the model learns the
      voted labels) and keeping one of them would undo it; but a run that
      collapsed or herded keeps what any run would, not its collapsed end.
  """

  def __init__(self, select_by, scores, max_share=None,
               exclude_after_herding=False, preferred_from_epoch=0):
    super().__init__()
    self.select_by = selection.check_select_by(select_by)
    self.scores = scores
    self.max_share = max_share
    self.exclude_after_herding = exclude_after_herding
    self.preferred_from_epoch = int(preferred_from_epoch)
    self.epochs_seen = []
    self._last_accuracy = None
    self._best = None

  def on_epoch_end(self, epoch, logs=None):
    epoch = int(epoch)
    self.epochs_seen.append(epoch)
    accuracy = (logs or {}).get("val_target_accuracy")
    self._last_accuracy = None if accuracy is None else float(accuracy)
    name = selection.score_name(self.select_by)
    if name is None:
      return
    values = self.scores.epoch_scores.get(epoch, {})
    if not selection.eligible(values, self.max_share):
      return  # A collapsed epoch is never kept.
    if self.exclude_after_herding and self.herding_epoch is not None:
      return  # Nor one after a herd (this epoch is not the herd's first).
    value = values.get(name)
    best = None if self._best is None else self._best.value
    first_preferred = (self._best is not None
                       and self._best.epoch < self.preferred_from_epoch
                       <= epoch)
    if first_preferred or selection.is_better(value, best, name):
      self._best = _Best(epoch, float(value), self.model.get_weights(),
                         np.array(self.scores.last_predictions, copy=True),
                         self._last_accuracy)

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
    name = selection.score_name(self.select_by)
    if name is not None and self._best is None:
      logging.info("no epoch has score %r in this run: keeping the last "
                   "epoch's weights", name)
    best = self._best
    last = self.epochs_seen[-1] if self.epochs_seen else int(final_epoch)
    if best is None or best.epoch == last:
      # The model holds the last epoch's weights.
      if self.epochs_seen:
        values = dict(epoch_scores[last])
      else:  # Resumed after its end: score the model as it is.
        values = self.scores.compute(model)
      return Selected(selection.LAST if best is None else self.select_by,
                      last, None if best is None else best.value, values,
                      self.scores.last_predictions, self._last_accuracy,
                      False)
    model.set_weights(best.weights)
    self._best = None  # The copy is in the model now.
    return Selected(self.select_by, best.epoch, best.value,
                    dict(epoch_scores[best.epoch]), best.predictions,
                    best.accuracy, True)

  # === Backups ===

  def backup_state(self):
    """What a backup keeps for a resumed run to select as this one would.

    Returns:
      `(record, arrays)`: a JSON-able record (every epoch's label-free
      scores so far, and the best epoch's number, score and accuracy), and
      the best epoch's weights and target predictions as
      `{"weights": [arrays], "predictions": array}`, or None when there is
      no copy.
    """
    record = {"epoch_scores": {str(epoch): values for epoch, values in
                               self.scores.epoch_scores.items()}}
    if self._best is None:
      return record, None
    record["best"] = {"epoch": self._best.epoch, "value": self._best.value,
                      "accuracy": self._best.accuracy}
    return record, {"weights": self._best.weights,
                    "predictions": self._best.predictions}

  def restore_backup_state(self, record, arrays):
    """Takes up what `backup_state` returned, in a resumed run.

    Args:
      record: the record.
      arrays: the arrays, or None (the record then has no `best`).

    Raises:
      ValueError: the record names a best epoch but no arrays came with it.
    """
    self.scores.epoch_scores.update(
        {int(epoch): dict(values)
         for epoch, values in record.get("epoch_scores", {}).items()})
    best = record.get("best")
    if best is None:
      self._best = None
      return
    if arrays is None:
      raise ValueError(f"the backup names epoch {best['epoch']} as the best "
                       "so far, but holds no copy of its weights")
    self._best = _Best(int(best["epoch"]), float(best["value"]),
                       list(arrays["weights"]),
                       np.asarray(arrays["predictions"]), best["accuracy"])
