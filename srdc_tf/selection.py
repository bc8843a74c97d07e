"""Model selection without target labels: which epoch's weights a run keeps.

Pure logic over per-epoch label-free scores (`srdc_tf.scores`); the
callback that keeps the weights is `callbacks.model_selection`. Every
epoch's scores are computed on the un-augmented target at the epoch's end,
and `--select_by=<score>` keeps the weights of the epoch with the best
score (the first such epoch on ties); `last` keeps the last epoch's, as
training without selection does.

Target accuracy is never used to select: it is reported only
(`benchmarks/score_correlation.py` measures how well each score ranks
epochs).
"""

import math

from srdc_tf import scores

LAST = "last"
# +1: higher is better; -1: lower is better.
DIRECTIONS = {
    # Confident predictions; also rewards an over-confident collapse.
    scores.ENTROPY: -1,
    # Predictions spread over the classes.
    scores.BALANCE: +1,
    # Dense neighbourhoods of softmax outputs (Saito et al., ICCV 2021).
    scores.SND: +1,
    # The classifier agrees with the clustering of its own features (SRDC
    # runs only; the source-only baseline has no k-means).
    scores.KMEANS_AGREEMENT: +1,
}
SELECT_BY = (LAST,) + tuple(DIRECTIONS)
# An epoch whose balance is below this, or whose largest predicted class
# takes more than the collapse guard's share limit, has collapsed (see
# `collapse_guard`, which warns on both): no score selects it while another
# epoch has not. Entropy needs this most, as it rewards a collapse.
MIN_BALANCE = 0.5
# The default of --exclude_after_herding: on (README, "Label-free scores").
# It changes nothing on a run that never collapses after a non-collapsed
# epoch, which held on every Office-31 and digits run checked.
DEFAULT_EXCLUDE_AFTER_HERDING = True
# The default of --select_by, chosen by measurement across the benchmark
# families (README, "Label-free scores"): among the epochs that did not
# collapse, the most confident equalled the last epoch on every Office-31
# run and was as good or better on the digits and hard-shift runs.
DEFAULT_SELECT_BY = scores.ENTROPY
# The score a run is compared on with its source-only baseline (the
# collapse guard's third check), unless it selects by balance. Not entropy: adaptation
# lowers it whether it helps or not. Not SND: on softmax outputs it is
# highest, log(N - 1), when all outputs are alike (a soft, untrained or
# collapsed model), so the more confident adapted model scores lower. Not
# k-means agreement: the baseline has none. Balance drops when adaptation
# herds the target into fewer classes than the baseline predicted.
COMPARISON_SCORE = scores.BALANCE


def check_select_by(select_by):
  """Returns `select_by` if it is one of `SELECT_BY`.

  Raises:
    ValueError: it is not, quoting it.
  """
  if select_by not in SELECT_BY:
    raise ValueError(f"select_by must be one of {SELECT_BY}, got "
                     f"{select_by!r}")
  return select_by


def score_name(select_by):
  """The score `select_by` selects on, or None for `last`."""
  check_select_by(select_by)
  return None if select_by == LAST else select_by


def comparison_score(select_by):
  """The score a run is compared on with its baseline: its selection score
  when that compares two models fairly (balance), else `COMPARISON_SCORE`
  (for `last`, and for entropy, SND and k-means agreement, see there)."""
  name = score_name(select_by)
  return name if name == scores.BALANCE else COMPARISON_SCORE


def _usable(value):
  return value is not None and not (isinstance(value, float)
                                    and math.isnan(value))


def is_better(candidate, best, name):
  """Whether score `name` = `candidate` beats `best` (strictly).

  Args:
    candidate: a float, or None / NaN (never better).
    best: the best so far, or None / NaN (anything usable beats it).
    name: a key of `DIRECTIONS`.

  Returns:
    A bool.

  Raises:
    ValueError: `name` has no direction.
  """
  if name not in DIRECTIONS:
    raise ValueError(f"score {name!r} has no direction; selectable scores "
                     f"are {tuple(DIRECTIONS)}")
  if not _usable(candidate):
    return False
  if not _usable(best):
    return True
  return DIRECTIONS[name] * (float(candidate) - float(best)) > 0


def eligible(values, max_share=None):
  """Whether an epoch with these scores may be selected (it has not
  collapsed, by the collapse guard's two tests).

  Args:
    values: the epoch's scores.
    max_share: the largest share of the target one predicted class may
      take (`collapse_guard.share_limit` of the source's class shares), or
      None to test the balance alone.

  Returns:
    False when its balance, if known, is below `MIN_BALANCE`, or its
    largest class share, if known, is above `max_share`; else True.
  """
  balance = values.get(scores.BALANCE)
  if _usable(balance) and float(balance) < MIN_BALANCE:
    return False
  share = values.get(scores.LARGEST_CLASS_SHARE)
  return (max_share is None or not _usable(share)
          or float(share) <= max_share)


def collapsed_after_spreading(epoch_scores, collapsed):
  """The epochs that collapsed after an earlier epoch had not.

  Collapsed epochs at the start of a run do not count: a run may start
  from a collapsed source model (one that has barely learnt the source
  predicts one class for most of the target) and then spread its
  predictions. `herding_epoch` and the collapse guard's instability check
  both count from the first spread.

  Args:
    epoch_scores: a mapping from epoch (int) to a value, or a sequence of
      `(epoch, value)` pairs.
    collapsed: a function of one epoch's value, True if it collapsed.

  Returns:
    The epochs, in order.
  """
  epochs, spread = [], False
  for epoch, values in sorted(dict(epoch_scores).items()):
    if not collapsed(values):
      spread = True
    elif spread:
      epochs.append(epoch)
  return epochs


def herding_epoch(epoch_scores, max_share=None):
  """The epoch at which a run's target predictions first collapsed after
  an epoch in which they had not (the run herded the target), or None.

  Args:
    epoch_scores: as in `select_epoch`.
    max_share: see `eligible`.

  Returns:
    The first of `collapsed_after_spreading` by `eligible`'s tests, or
    None.
  """
  herded = collapsed_after_spreading(
      epoch_scores, lambda values: not eligible(values, max_share))
  return herded[0] if herded else None


def select_epoch(epoch_scores, select_by, max_share=None,
                 exclude_after_herding=False):
  """The epoch `select_by` picks.

  Collapsed epochs (`eligible` is False) are never picked by a score;
  with `exclude_after_herding`, neither is any epoch from the
  `herding_epoch` on. When no epoch is left, the last is kept.

  Args:
    epoch_scores: a mapping from epoch (int) to that epoch's scores (a dict
      from score name to float), or a sequence of `(epoch, scores)` pairs.
    select_by: one of `SELECT_BY`.
    max_share: see `eligible`.
    exclude_after_herding: whether the epochs from the run's first herding
      on are ineligible (`--exclude_after_herding`, adaptation runs: their
      pseudo-labels come from their own predictions, so a herd, once
      formed, feeds itself and later epochs inherit it even when their
      predictions spread again).

  Returns:
    `(epoch, value)`: the last epoch and None for `last` (or when every
    epoch collapsed); else the first eligible epoch with the best usable
    value of the score, and that value.

  Raises:
    ValueError: no epoch, a bad `select_by`, or no epoch has a usable
      value of the score.
  """
  name = score_name(select_by)
  items = sorted(dict(epoch_scores).items())
  if not items:
    raise ValueError("select_epoch needs at least one epoch, got none")
  if name is None:
    return items[-1][0], None
  best_epoch, best = None, None
  herding = (herding_epoch(items, max_share) if exclude_after_herding
             else None)
  candidates = [(epoch, values) for epoch, values in items
                if eligible(values, max_share)
                and (herding is None or epoch < herding)]
  if not candidates:
    return items[-1][0], None
  for epoch, values in candidates:
    value = values.get(name)
    if is_better(value, best, name):
      best_epoch, best = epoch, float(value)
  if best_epoch is None:
    raise ValueError(f"no epoch has a value of score {name!r} (epochs "
                     f"{[epoch for epoch, _ in items]})")
  return best_epoch, best
