r"""Collects finished runs into a paper-style results table.

  python -m srdc_tf.report --run_dirs=runs/office31 --output=runs/office31/table

Rows are methods, columns tasks and their average; a cell is the mean target
accuracy (%) over the seeds found (with the standard deviation and the number
of seeds beside it in the Markdown). Writes `<output>.csv` and `<output>.md`.
"""

import glob
import json
import os

from absl import app
from absl import flags
import pandas as pd

from srdc_tf import cli
from srdc_tf import run_directory

FLAGS = flags.FLAGS
flags.DEFINE_list("run_dirs", None, "Folders searched (recursively) for "
                  "run_info.json files.")
flags.DEFINE_string("output", None, "Output prefix for .csv and .md.")
flags.DEFINE_boolean("per_class", False, "Also write the per-class accuracy "
                     "table (VisDA-style) as <output>_per_class.csv/.md.")
flags.DEFINE_list("tasks", None, "Only these tasks, as columns in this "
                  "order (e.g. the four hard Office-31 tasks of an "
                  "ablation); unset: every task found.")
flags.DEFINE_list("seeds", None, "Only runs with these seeds; unset: all.")
flags.mark_flags_as_required(["run_dirs", "output"])


def collect_runs(run_dirs):
  """One row per finished run found under `run_dirs`.

  Args:
    run_dirs: folders to search recursively for `run_info.json`.

  Returns:
    A DataFrame with columns task, method, seed, accuracy (%), seconds and
    the run's folder, plus `per_class` (a dict, when the run recorded it).
  """
  rows = []
  for run_dir in run_dirs:
    if not os.path.isdir(run_dir):
      raise ValueError(
          f"--run_dirs: no folder {run_dir!r} (looked in "
          f"{os.path.abspath(run_dir)}); pass the folder your finished runs "
          "are in (the --model_dir of srdc-train, or a folder above it)")
    for path in sorted(glob.glob(os.path.join(run_dir, "**", "run_info.json"),
                                 recursive=True)):
      info = run_directory.read_json(path)
      try:
        settings = info.get("settings")
        rows.append({"task": info["task"], "method": info["method"],
                     "seed": info["seed"],
                     "settings": (None if settings is None else json.dumps(
                         _cell_settings(settings), sort_keys=True)),
                     "accuracy": 100.0 * info["target_accuracy"],
                     "seconds": info.get("seconds"),
                     "per_class": info.get("per_class_accuracy"),
                     "run_dir": os.path.dirname(path)})
      except (AttributeError, KeyError, TypeError) as error:
        raise ValueError(f"{path!r} is not a finished run's record (no "
                         f"{error} in it)") from error
  if not rows:
    raise ValueError(
        f"--run_dirs: no run_info.json under {run_dirs}: a run writes it "
        "when it finishes")
  runs = pd.DataFrame(rows)
  check_cells(runs)
  return runs


def _cell_settings(settings):
  """What the runs of one table cell must share: every setting but the
  seed and where the run wrote (`run_directory.RUNTIME_ONLY`). A setting
  newer than a run's record counts at its default, as a resume counts it
  (`run_directory.differences`)."""
  # Imported here: run_settings imports TensorFlow, whose start-up lines
  # would come before a usage error of the binary (srdc_tf.cli hides them
  # only once it runs).
  from srdc_tf import run_settings  # pylint: disable=g-import-not-at-top
  defaults = run_directory.setting_defaults(run_settings.RunSettings)
  return {key: value for key, value in
          run_directory.comparable_settings({**defaults, **settings}).items()
          if key != "seed"}


def check_cells(runs):
  """Refuses a table whose cells would mix runs.

  Args:
    runs: the frame of `collect_runs`.

  Raises:
    ValueError: two runs of one (task, method) were trained with other
      settings (beyond the seed), or a seed of a (task, method) appears
      twice; naming the runs' folders.
  """
  for (task, method), cell in runs.groupby(["task", "method"]):
    recorded = cell[cell["settings"].notna()]
    if recorded["settings"].nunique() > 1:
      first, other = (json.loads(v) for v in recorded["settings"].unique()[:2])
      differ = sorted(k for k in set(first) | set(other)
                      if first.get(k) != other.get(k))
      raise ValueError(
          f"runs of {task} / {method} were trained with other settings "
          f"({', '.join(differ)} differ) and would be averaged into one "
          f"cell: {sorted(recorded['run_dir'])}. Pass --run_dirs that hold "
          "one setting each.")
    repeated = cell[cell["seed"].duplicated(keep=False)]
    if len(repeated):
      raise ValueError(
          f"seed {sorted(set(repeated['seed']))} of {task} / {method} "
          f"appears more than once: {sorted(repeated['run_dir'])}; each "
          "seed counts once, so remove the copies or pass other --run_dirs.")


def select_runs(runs, tasks=None, seeds=None):
  """The runs of some tasks and seeds, tasks in the order given.

  Args:
    runs: the frame of `collect_runs`.
    tasks: task names to keep, or None for all.
    seeds: seeds (ints or strings) to keep, or None for all.

  Returns:
    The selected rows, with `task` an ordered categorical when `tasks` is
    given, so that tables list the tasks in that order.

  Raises:
    ValueError: a task or seed that no run has, naming it and what exists.
  """
  if tasks:
    missing = sorted(set(tasks) - set(runs["task"]))
    if missing:
      raise ValueError(f"--tasks: no runs of {missing}; tasks found: "
                       f"{sorted(set(runs['task']))}")
    runs = runs[runs["task"].isin(tasks)].copy()
    runs["task"] = pd.Categorical(runs["task"], categories=list(tasks),
                                  ordered=True)
  if seeds:
    try:
      wanted = {int(seed) for seed in seeds}
    except ValueError as error:
      raise ValueError(f"--seeds must be integers, got {seeds!r}") from error
    missing = sorted(wanted - set(runs["seed"]))
    if missing:
      raise ValueError(f"--seeds: no runs with seed {missing}; seeds found: "
                       f"{sorted(set(runs['seed']))}")
    runs = runs[runs["seed"].isin(wanted)]
  return runs


def results_table(runs):
  """Paper-style table: rows methods, columns tasks and Avg.

  Args:
    runs: the frame of `collect_runs`.

  Returns:
    `(mean, std, count)` DataFrames of the same shape; Avg is the mean over
    the tasks of the per-task means (and is left empty for a method that
    lacks a task).
  """
  grouped = runs.groupby(["method", "task"], observed=True)["accuracy"]
  mean = grouped.mean().unstack("task")
  std = grouped.std(ddof=0).unstack("task")
  count = grouped.count().unstack("task")
  mean["Avg"] = mean.mean(axis=1, skipna=False)
  std["Avg"] = float("nan")
  count["Avg"] = count.min(axis=1)
  return mean, std, count


def per_class_table(runs):
  """Mean per-class accuracy (%) over seeds, rows (method, task)."""
  rows = []
  for _, run in runs.iterrows():
    if run["per_class"]:
      rows.append({"method": run["method"], "task": run["task"],
                   **{k: 100.0 * v for k, v in run["per_class"].items()}})
  if not rows:
    raise ValueError("no run recorded per-class accuracy")
  frame = pd.DataFrame(rows).groupby(["method", "task"]).mean()
  frame["Mean"] = frame.mean(axis=1)
  return frame


def to_markdown(mean, std=None, count=None):
  """A Markdown table of `mean` (with `± std (n)` where given)."""
  header = [mean.index.name or ""] + [str(c) for c in mean.columns]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for index, row in mean.iterrows():
    cells = [str(index)]
    for column, value in row.items():
      if pd.isna(value):
        cells.append("")
        continue
      cell = f"{value:.1f}"
      if std is not None and not pd.isna(std.loc[index, column]):
        cell += f" ± {std.loc[index, column]:.1f}"
      if count is not None and column != "Avg":
        cell += f" ({int(count.loc[index, column])})"
      cells.append(cell)
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    runs = select_runs(collect_runs(FLAGS.run_dirs), FLAGS.tasks,
                       FLAGS.seeds)
  except ValueError as error:
    raise app.UsageError(str(error)) from error
  mean, std, count = results_table(runs)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  mean.round(2).to_csv(FLAGS.output + ".csv")
  markdown = to_markdown(mean, std, count)
  with open(FLAGS.output + ".md", "w") as f:
    f.write(markdown)
  print(markdown)
  if FLAGS.per_class:
    table = per_class_table(runs)
    table.round(2).to_csv(FLAGS.output + "_per_class.csv")
    flat = table.copy()
    flat.index = [f"{m} {t}" for m, t in flat.index]
    with open(FLAGS.output + "_per_class.md", "w") as f:
      f.write(to_markdown(flat))


def cli_main():
  """The `srdc-report` console script."""
  cli.run(main, doc=__doc__, tensorflow=False)


if __name__ == "__main__":
  cli_main()
