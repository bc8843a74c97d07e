r"""How well each label-free score ranks a run's epochs, and what selecting by
it would have given, from finished runs' metrics.csv.

Every folder under --run_dirs holding a metrics.csv (one row per epoch,
with `val_target_accuracy` and the `score_*` columns that every run logs)
is one run; its task, method and seed come from its run_info.json (else
the folder's path names it). Per task and method, averaged over the runs
(seeds):

- the Spearman rank correlation over epochs of each score, oriented by the
  score's direction (`srdc_tf.selection.DIRECTIONS`: entropy is negated),
  with the target accuracy: +1 = the score orders the epochs exactly as
  the accuracy does, 0 = unrelated, -1 = reversed;
- the target accuracy of the last epoch, of the epoch each score selects
  (`selection.select_epoch`, as `--select_by` does) and of the best epoch
  (the oracle: reported only, never usable without target labels).

  python benchmarks/score_correlation.py --run_dirs=runs/office31,runs/digits

Target accuracy is read from metrics.csv; the scores never see it.
"""

import glob
import json
import math
import os

from absl import app
from absl import flags
import numpy as np
import pandas as pd

import benchlib  # noqa: F401  Puts the repository on sys.path.
from srdc_tf import scores as scores_lib
from srdc_tf import selection

FLAGS = flags.FLAGS
ACCURACY = "val_target_accuracy"
SCORES = tuple(selection.DIRECTIONS)  # The selectable scores.


def rankdata(values):
  """Ranks 1..N of `values`, ties given their average rank (as
  `scipy.stats.rankdata`)."""
  values = np.asarray(values, dtype=np.float64)
  order = np.argsort(values, kind="stable")
  ranks = np.empty(len(values), np.float64)
  ranks[order] = np.arange(1, len(values) + 1)
  for value in np.unique(values):
    tied = values == value
    if tied.sum() > 1:
      ranks[tied] = ranks[tied].mean()
  return ranks


def spearman(x, y):
  """Spearman's rank correlation of two sequences: the Pearson
  correlation of their ranks. NaN pairs are left out; NaN when fewer than
  two pairs are left or one side is constant."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  keep = ~(np.isnan(x) | np.isnan(y))
  x, y = x[keep], y[keep]
  if len(x) < 2:
    return math.nan
  rx, ry = rankdata(x), rankdata(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
  if denominator == 0:
    return math.nan
  return float((rx * ry).sum() / denominator)


def analyse_run(metrics, max_share=None, exclude_after_herding=False):
  """Correlations and selections of one run.

  Args:
    metrics: its metrics.csv as a DataFrame (`epoch`, `val_target_accuracy`
      and `score_*` columns).
    max_share: the run's collapse share limit (`selection.eligible`), or
      None (runs older than its summary's `selection_max_share`).
    exclude_after_herding: see `selection.select_epoch`.

  Returns:
    A dict: `correlation` (score -> oriented Spearman rho, NaN when the run
    lacks the score), `accuracy` (`last`, `best` and every score -> the
    target accuracy of the epoch it keeps, NaN when the run lacks it).

  Raises:
    ValueError: no `val_target_accuracy` column or no rows.
  """
  if ACCURACY not in metrics.columns or metrics.empty:
    raise ValueError(f"metrics need rows and a {ACCURACY!r} column, got "
                     f"columns {list(metrics.columns)}")
  epochs = (metrics["epoch"] if "epoch" in metrics.columns
            else pd.Series(range(len(metrics))))
  accuracy = dict(zip(epochs.astype(int), metrics[ACCURACY].astype(float)))
  result = {"correlation": {}, "accuracy": {
      "last": accuracy[max(accuracy)], "best": max(accuracy.values())}}
  for name in SCORES:
    column = scores_lib.SCORE_PREFIX + name
    if column not in metrics.columns or metrics[column].isna().all():
      result["correlation"][name] = math.nan
      result["accuracy"][name] = math.nan
      continue
    values = metrics[column].astype(float)
    result["correlation"][name] = spearman(
        selection.DIRECTIONS[name] * values, metrics[ACCURACY])
    epoch, _ = selection.select_epoch(
        {int(e): _scores_of(metrics, row) for row, e in enumerate(epochs)},
        name, max_share, exclude_after_herding)
    result["accuracy"][name] = accuracy[epoch]
  return result


def _scores_of(metrics, row):
  """The label-free scores of one epoch (one metrics.csv row)."""
  return {name: float(metrics[scores_lib.SCORE_PREFIX + name].iloc[row])
          for name in (scores_lib.BALANCE, scores_lib.LARGEST_CLASS_SHARE)
          + SCORES
          if scores_lib.SCORE_PREFIX + name in metrics.columns}


def _share_limit_in(record):
  """`selection_max_share` of a run record or of one of its methods'."""
  for entry in [record] + [value for value in record.values()
                           if isinstance(value, dict)]:
    if entry.get("selection_max_share"):
      return float(entry["selection_max_share"])
  return None


def _max_share(folder, info):
  """The share limit a finished run selected with, or None: from its
  run_info.json `info` (every run, a `--with_baseline` baseline's folder
  included), else from its summary.json."""
  limit = _share_limit_in(info)
  if limit is not None:
    return limit
  try:
    with open(os.path.join(folder, "summary.json")) as f:
      return _share_limit_in(json.load(f))
  except (OSError, ValueError):
    return None


def find_runs(run_dirs):
  """`(name, task, method, metrics, max_share)` of every folder with a
  metrics.csv (`max_share`: see `analyse_run`)."""
  runs = []
  for root in run_dirs:
    for path in sorted(glob.glob(os.path.join(root, "**", "metrics.csv"),
                                 recursive=True)):
      folder = os.path.dirname(path)
      task, method = os.path.relpath(folder, root), "?"
      info = {}
      try:
        with open(os.path.join(folder, "run_info.json")) as f:
          info = json.load(f)
        task, method = info.get("task", task), info.get("method", method)
      except (OSError, ValueError):
        pass
      runs.append((folder, task, method, pd.read_csv(path),
                   _max_share(folder, info)))
  return runs


def _mean(values):
  values = [v for v in values if not math.isnan(v)]
  return sum(values) / len(values) if values else math.nan


def tables(runs, by_task=False):
  """The two tables (columns, rows) over `find_runs`' runs, one row per
  task and method (per task, over all its methods, with `by_task`),
  averaged over its runs. Runs still in progress (no run_info.json) and
  runs that logged no scores (older versions) are left out, so that every
  column averages the same runs. Selections replay `--select_by` with the
  defaults: adaptation runs exclude the epochs after a herd."""
  groups = {}
  for _, task, method, metrics, max_share in runs:
    if method == "?" or not any(column.startswith(scores_lib.SCORE_PREFIX)
                                for column in metrics.columns):
      continue
    adapted = method != "source_only"
    if by_task:
      method = "srdc" if method.startswith("srdc") else method
    groups.setdefault((task, method), []).append(analyse_run(
        metrics, max_share, exclude_after_herding=(
            adapted and selection.DEFAULT_EXCLUDE_AFTER_HERDING)))
  correlation_rows, accuracy_rows = [], []
  for (task, method), results in sorted(groups.items()):
    head = [task, method, len(results)]
    correlation_rows.append(head + [
        _mean([r["correlation"][name] for r in results]) for name in SCORES])
    accuracy_rows.append(head + [
        100 * _mean([r["accuracy"][key] for r in results])
        for key in ("last",) + SCORES + ("best",)])
  columns = ["task", "method", "runs"]
  return ((columns + [f"rho {name}" for name in SCORES], correlation_rows),
          (columns + ["last"] + [f"by {name}" for name in SCORES]
           + ["best (oracle)"], accuracy_rows))


def markdown(columns, rows):
  def cell(value):
    if isinstance(value, float):
      return "-" if math.isnan(value) else f"{value:.2f}"
    return str(value)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def define_flags():
  # Defined when run as a script only: imported beside `srdc_tf.report`
  # (the test suite), a module-level --run_dirs would be defined twice.
  flags.DEFINE_list("run_dirs", None, "Folders searched recursively for "
                    "metrics.csv files.")
  flags.DEFINE_boolean("by_task", False, "One row per task and method "
                       "family (source_only, srdc), over every SRDC "
                       "variant, instead of one per exact method.")
  flags.mark_flag_as_required("run_dirs")


def main(argv):
  del argv
  runs = find_runs(FLAGS.run_dirs)
  if not runs:
    raise app.UsageError(f"no metrics.csv under {FLAGS.run_dirs}")
  (c_columns, c_rows), (a_columns, a_rows) = tables(runs, FLAGS.by_task)
  print("Spearman rank correlation over epochs of each score (oriented: "
        "entropy negated) with the target accuracy; mean over runs:\n")
  print(markdown(c_columns, c_rows))
  print("\nTarget accuracy (%) of the epoch kept: the last, the one each "
        "score selects, and the best (oracle, reported only); mean over "
        "runs:\n")
  print(markdown(a_columns, a_rows))


if __name__ == "__main__":
  define_flags()
  app.run(main)
