"""The collapse guard: tells the user when a run's target predictions
collapsed, or when adaptation scored worse than the source-only baseline.

After training, the model a run keeps (the selected epoch's, see
`srdc_tf.selection`) is checked on its label-free target scores
(`srdc_tf.scores`):

(a) `score_balance` (entropy of the mean prediction / log K) below
    `MIN_BALANCE`: the predictions spread over few classes;
(b) `score_largest_class_share` above `share_limit(...)`: one class takes
    far more of the target than any class has of the source;
(c) with a source-only baseline: the adapted model's comparison score
    (`selection.comparison_score`) worse than the baseline's by more than
    `BASELINE_MARGIN`;
(d) other epochs than the one kept collapsed by (a) or (b) during training,
    after an epoch that had not (`check_training`): selection skips them,
    so the model kept may pass (a) and (b) after an unstable adaptation.

(a) and (b) are collapses, (c) and (d) warnings. Each finding prints one line
(absl `logging.warning`, starting with `WARNING`) naming the score, its
value and the epoch, and goes into run_info.json and summary.json under
`warnings`. With `--on_collapse=fallback` and a baseline, a finding on the
adapted model makes the run keep and export the better-scored of the two
(`choose_export`), and the summary says which (`exported`).

Check functions are pure; the wiring (reading the baseline's run, printing,
loading its weights) is at the end.
"""

import dataclasses
import json
import math
import os

from absl import logging
import numpy as np

from srdc_tf import run_directory
from srdc_tf import scores as scores_lib
from srdc_tf import selection

# (a) 0.5 is the class entropy of a uniform choice among sqrt(K) classes
# (log sqrt(K) = 0.5 log K): 2.4 of 6 classes, 3.2 of 10, 5.6 of 31. A
# target whose classes are merely imbalanced stays well above it; a model
# that gives most images one or two classes falls below.
MIN_BALANCE = selection.MIN_BALANCE
# (b) The target's class proportions may differ from the source's (label
# shift): a class may take up to this many times the share of the source's
# largest class before it counts as collapse...
SHARE_FACTOR = 3.0
# ... and never less than this share: on many classes (31 classes: 3 / 31
# = 0.1) an ordinary imbalance would otherwise count as collapse.
MIN_SHARE_LIMIT = 0.3

# (c) Two healthy models differ by a little on any score (balance 0.95
# against 0.96): only a difference larger than this, in the score's units
# (balance and agreements are fractions, entropy and SND nats), is a
# warning.
BASELINE_MARGIN = 0.05

COLLAPSE = "collapse"
UNSTABLE = "unstable"
WORSE_THAN_BASELINE = "worse_than_baseline"
FALLBACK = "fallback"
ON_COLLAPSE = ("warn", "fallback")
ADAPTED = "adapted"
SOURCE_ONLY = "source_only"
PREDICTIONS_FILE = "target_predictions.npy"


@dataclasses.dataclass(frozen=True)
class Finding:
  """One thing the guard found.

  Attributes:
    kind: `COLLAPSE`, `WORSE_THAN_BASELINE` or `FALLBACK`.
    model: the method of the model it is about ("srdc", "source_only").
    score: the logged score name (`score_balance`, ...), or None.
    value: its value.
    limit: the threshold, or the baseline's value it was compared with.
    epoch: the epoch of the model checked (0-based, metrics.csv's).
    message: the line printed.
  """
  kind: str
  model: str
  score: str
  value: float
  limit: float
  epoch: int
  message: str

  def as_dict(self):
    return dataclasses.asdict(self)


# === Checks (pure) ===


def _usable(value):
  return value is not None and not math.isnan(float(value))


def _where(epoch, model):
  return (f"at epoch {epoch + 1} (epoch={epoch} in metrics.csv) of the "
          f"{model} model")


def share_limit(source_shares):
  """The largest target share of one predicted class that is not collapse.

  Args:
    source_shares: `[K]` shares of the source's classes (`scores.
      class_shares` of the source labels).

  Returns:
    `max(SHARE_FACTOR * max(source_shares), MIN_SHARE_LIMIT)`.

  Raises:
    ValueError: `source_shares` is empty.
  """
  source_shares = np.asarray(source_shares, dtype=np.float64)
  if source_shares.size == 0:
    raise ValueError("source_shares is empty")
  return float(max(SHARE_FACTOR * source_shares.max(), MIN_SHARE_LIMIT))


def check_collapse(model_scores, source_shares, epoch, model="srdc"):
  """Checks (a) and (b) on one model's target scores.

  Args:
    model_scores: its scores (`scores.target_scores`; unprefixed names).
    source_shares: `[K]` shares of the source's classes.
    epoch: the epoch of the model (0-based).
    model: its method name, for the message.

  Returns:
    A list of `Finding`s of kind `COLLAPSE` (empty: no collapse). Missing
    or NaN scores are not checked.
  """
  findings = []
  balance = model_scores.get(scores_lib.BALANCE)
  if _usable(balance) and balance < MIN_BALANCE:
    findings.append(Finding(
        COLLAPSE, model, scores_lib.SCORE_PREFIX + scores_lib.BALANCE,
        float(balance), MIN_BALANCE, int(epoch),
        f"WARNING collapse guard: score_balance={balance:.3f} "
        f"{_where(epoch, model)} is below {MIN_BALANCE}: its target "
        "predictions collapsed onto few classes (score_balance = entropy of "
        "the mean prediction / log K; 1 = all classes equally)."))
  share = model_scores.get(scores_lib.LARGEST_CLASS_SHARE)
  limit = share_limit(source_shares)
  if _usable(share) and share > limit:
    findings.append(Finding(
        COLLAPSE, model,
        scores_lib.SCORE_PREFIX + scores_lib.LARGEST_CLASS_SHARE,
        float(share), limit, int(epoch),
        f"WARNING collapse guard: score_largest_class_share={share:.3f} "
        f"{_where(epoch, model)} is above {limit:.3f} = max({SHARE_FACTOR:g}"
        f" x the largest source class share {np.max(source_shares):.3f}, "
        f"{MIN_SHARE_LIMIT}): one class takes most of its target "
        "predictions."))
  return findings


def compare_with_baseline(model_scores, baseline_scores, name, epoch,
                          baseline_epoch, model="srdc"):
  """Check (c): is the model worse than the baseline on score `name`?

  Args:
    model_scores: the adapted model's scores (unprefixed names).
    baseline_scores: the source-only baseline's scores.
    name: the score compared, a key of `selection.DIRECTIONS`.
    epoch: the adapted model's epoch.
    baseline_epoch: the baseline's epoch.
    model: the adapted model's method name.

  Returns:
    A list with one `WORSE_THAN_BASELINE` `Finding`, or empty (not worse
    by more than `BASELINE_MARGIN`, or a score missing on either side).

  Raises:
    ValueError: `name` has no direction.
  """
  if name not in selection.DIRECTIONS:
    raise ValueError(f"score {name!r} has no direction; comparable scores "
                     f"are {tuple(selection.DIRECTIONS)}")
  value, reference = model_scores.get(name), baseline_scores.get(name)
  if not (_usable(value) and _usable(reference)):
    return []
  worse_by = selection.DIRECTIONS[name] * (float(reference) - float(value))
  if not worse_by > BASELINE_MARGIN:
    return []
  direction = "higher" if selection.DIRECTIONS[name] > 0 else "lower"
  return [Finding(
      WORSE_THAN_BASELINE, model, scores_lib.SCORE_PREFIX + name,
      float(value), float(reference), int(epoch),
      f"WARNING collapse guard: score_{name}={value:.4f} "
      f"{_where(epoch, model)} is worse than the source-only baseline's "
      f"{reference:.4f} (its epoch {baseline_epoch + 1}; {direction} is "
      f"better, by more than {BASELINE_MARGIN}): adaptation may have made "
      "the classifier worse.")]


def check_training(epoch_scores, source_shares, kept_epoch, model="srdc"):
  """Check (d): did other epochs than the one kept collapse?

  Model selection keeps an epoch that did not collapse, which can hide a
  run that collapsed for most of its training (the hard shift's seed 1):
  the model kept then passes (a) and (b) although the adaptation was
  unstable, so the run says so. Collapsed epochs at the start of a run,
  before any epoch that did not collapse, do not count
  (`selection.collapsed_after_spreading`): that is a model that has
  barely learnt the source, neither instability nor adaptation (in a
  warm-up epoch lambda is 0).

  Args:
    epoch_scores: a mapping from epoch to its scores (unprefixed names).
    source_shares: `[K]` shares of the source's classes.
    kept_epoch: the epoch of the model kept (not counted).
    model: its method name, for the message.

  Returns:
    A list with one `UNSTABLE` `Finding` naming how many epochs collapsed
    and the worst one's largest class share (else its balance), or empty.
  """
  by_epoch = {int(epoch): check_collapse(values, source_shares, epoch, model)
              for epoch, values in dict(epoch_scores).items()}
  collapsed = {
      epoch: by_epoch[epoch]
      for epoch in selection.collapsed_after_spreading(by_epoch, bool)
      if epoch != int(kept_epoch)}
  if not collapsed:
    return []
  findings = [finding for found in collapsed.values() for finding in found]
  shares = [finding for finding in findings
            if finding.score.endswith(scores_lib.LARGEST_CLASS_SHARE)]
  # The largest share if any epoch had one, else the lowest balance.
  worst = (max(shares, key=lambda finding: finding.value) if shares
           else min(findings, key=lambda finding: finding.value))
  if model == SOURCE_ONLY:
    # The baseline itself: nothing adapted, and nothing to compare it with.
    advice = "its predictions on the target were unstable."
  else:
    advice = ("the adaptation was unstable: compare it with a source-only "
              "baseline (--with_baseline) before use.")
  return [Finding(
      UNSTABLE, model, worst.score, worst.value, worst.limit, worst.epoch,
      f"WARNING collapse guard: {len(collapsed)} of {len(epoch_scores)} "
      f"epochs of the {model} run collapsed during training (worst: "
      f"{worst.score}={worst.value:.3f} at epoch {worst.epoch}, limit "
      f"{worst.limit:.3f}); the model kept (epoch {int(kept_epoch)}) did "
      f"not, but {advice}")]


def is_collapsed(findings):
  """Whether any finding is a collapse."""
  return any(finding.kind == COLLAPSE for finding in findings)


def choose_export(on_collapse, findings, baseline_collapsed, model_score,
                  baseline_score, name):
  """Which model a run keeps: the adapted one, or the source-only baseline.

  With "warn", or no finding, always the adapted model. With "fallback",
  after a finding, the better-scored of the two: a model that did not
  collapse beats one that did; between two that both collapsed or both
  did not, the one better on score `name`, the baseline on a tie or a
  missing score (it is the safe choice once the adapted model was flagged).

  Args:
    on_collapse: one of `ON_COLLAPSE`.
    findings: the adapted model's findings (collapse and comparison).
    baseline_collapsed: whether the baseline collapsed (or None when there
      is no baseline).
    model_score: the adapted model's value of score `name` (or None).
    baseline_score: the baseline's (or None).
    name: the compared score, a key of `selection.DIRECTIONS`.

  Returns:
    `ADAPTED` or `SOURCE_ONLY`.

  Raises:
    ValueError: a bad `on_collapse`.
  """
  if on_collapse not in ON_COLLAPSE:
    raise ValueError(f"on_collapse must be one of {ON_COLLAPSE}, got "
                     f"{on_collapse!r}")
  if on_collapse == "warn" or not findings or baseline_collapsed is None:
    return ADAPTED
  collapsed = is_collapsed(findings)
  if collapsed != bool(baseline_collapsed):
    return SOURCE_ONLY if collapsed else ADAPTED
  return (ADAPTED if selection.is_better(model_score, baseline_score, name)
          else SOURCE_ONLY)


# === Wiring ===


@dataclasses.dataclass(frozen=True)
class Baseline:
  """A finished source-only run, as the adapted run compares with it.

  Attributes:
    model_dir: its run directory.
    scores: the label-free target scores of the model it kept.
    epoch: that model's epoch.
    target_accuracy: its target accuracy (reported only).
    predictions: its `[N]` target predictions, or None when its run did
      not write them.
  """
  model_dir: str
  scores: dict
  epoch: int
  target_accuracy: float
  predictions: np.ndarray = None

  @property
  def model_path(self):
    return os.path.join(self.model_dir, "model.keras")


def read_baseline(model_dir):
  """Reads the finished source-only run in `model_dir`.

  Args:
    model_dir: its run directory.

  Returns:
    A `Baseline`, or None (with a logged warning) when the run has no
    record or no scores (a run of an older version).
  """
  try:
    with open(os.path.join(model_dir, run_directory.RUN_INFO_FILE)) as f:
      info = json.load(f)
  except (OSError, ValueError) as error:
    logging.warning("cannot read the source-only baseline in %s (%s): no "
                    "comparison with it", model_dir, error)
    return None
  if not isinstance(info.get("scores"), dict):
    logging.warning("the source-only baseline in %s has no label-free "
                    "scores (trained by an older version): no comparison "
                    "with it", model_dir)
    return None
  predictions = None
  path = os.path.join(model_dir, PREDICTIONS_FILE)
  if os.path.isfile(path):
    predictions = np.load(path)
  return Baseline(model_dir, dict(info["scores"]),
                  int(info.get("selected_epoch", 0)),
                  float(info.get("target_accuracy", float("nan"))),
                  predictions)


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What the guard decided: its `findings` and which model is
  `exported` (`ADAPTED` or `SOURCE_ONLY`)."""
  findings: list
  exported: str


def guard(model, model_scores, epoch, source_shares, select_by,
          on_collapse="warn", baseline=None, epoch_scores=None):
  """Runs every check on the model a run keeps and prints each finding.

  Args:
    model: its method name ("srdc", "source_only", ...).
    model_scores: its label-free scores.
    epoch: its epoch.
    source_shares: `[K]` shares of the source's classes.
    select_by: the run's `--select_by` (the score compared with the
      baseline: `selection.comparison_score`).
    on_collapse: one of `ON_COLLAPSE`.
    baseline: the source-only `Baseline` to compare with, or None.
    epoch_scores: every trained epoch's scores, for `check_training`, or
      None.

  Returns:
    An `Outcome`.
  """
  findings = check_collapse(model_scores, source_shares, epoch, model)
  if epoch_scores:
    findings += check_training(epoch_scores, source_shares, epoch, model)
  name = selection.comparison_score(select_by)
  baseline_collapsed = None
  if baseline is not None:
    findings += compare_with_baseline(model_scores, baseline.scores, name,
                                      epoch, baseline.epoch, model)
    baseline_collapsed = is_collapsed(check_collapse(
        baseline.scores, source_shares, baseline.epoch, SOURCE_ONLY))
  elif on_collapse == "fallback" and findings and model != SOURCE_ONLY:
    findings.append(Finding(
        FALLBACK, model, None, None, None, int(epoch),
        f"WARNING collapse guard: --on_collapse=fallback has no source-only "
        f"baseline to fall back to (--with_baseline): keeping the {model} "
        "model."))
  exported = choose_export(on_collapse, findings, baseline_collapsed,
                           model_scores.get(name),
                           None if baseline is None
                           else baseline.scores.get(name), name)
  if exported == SOURCE_ONLY:
    findings.append(Finding(
        FALLBACK, model, scores_lib.SCORE_PREFIX + name,
        model_scores.get(name), baseline.scores.get(name), int(epoch),
        f"WARNING collapse guard: --on_collapse=fallback: model.keras and the "
        f"export are the source-only baseline's ({baseline.model_path}, "
        f"score_{name}={baseline.scores.get(name, float('nan')):.4f}), not "
        f"the {model} model's (score_{name}="
        f"{model_scores.get(name, float('nan')):.4f})."))
  for finding in findings:
    logging.warning("%s", finding.message)
  return Outcome(findings, exported)


def load_baseline_weights(model, baseline):
  """Sets `model`'s weights to those of the baseline's model.keras (the same
  architecture; a source-only `SRDCModel` has the same variables)."""
  import keras  # pylint: disable=g-import-not-at-top
  import srdc_tf.models  # pylint: disable=g-import-not-at-top,unused-import
  saved = keras.models.load_model(baseline.model_path, compile=False)
  model.set_weights(saved.get_weights())
