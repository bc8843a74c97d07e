"""The results table: means over seeds, the Avg column, Markdown."""

import json

import numpy as np
import pytest

from srdc_tf import report


def _run(root, task, method, seed, accuracy, per_class=None):
  folder = root / task / f"{method}{seed}"
  folder.mkdir(parents=True)
  info = {"task": task, "method": method, "seed": seed,
          "target_accuracy": accuracy, "seconds": 1.0}
  if per_class:
    info["per_class_accuracy"] = per_class
  (folder / "run_info.json").write_text(json.dumps(info))


def test_table_means_seeds_and_averages_tasks(tmp_path):
  for seed, (a, b) in enumerate([(0.80, 0.60), (0.90, 0.70)]):
    _run(tmp_path, "a2w", "srdc", seed, a)
    _run(tmp_path, "d2a", "srdc", seed, b)
  _run(tmp_path, "a2w", "source_only", 0, 0.5)
  _run(tmp_path, "d2a", "source_only", 0, 0.4)
  mean, std, count = report.results_table(report.collect_runs([str(tmp_path)]))
  # srdc: a2w (80 + 90) / 2 = 85, d2a (60 + 70) / 2 = 65, Avg 75.
  np.testing.assert_allclose(mean.loc["srdc"].tolist(), [85.0, 65.0, 75.0])
  np.testing.assert_allclose(mean.loc["source_only"].tolist(),
                             [50.0, 40.0, 45.0])
  np.testing.assert_allclose(std.loc["srdc", "a2w"], 5.0)
  assert count.loc["srdc", "a2w"] == 2
  markdown = report.to_markdown(mean, std, count)
  assert "| srdc | 85.0 ± 5.0 (2) | 65.0 ± 5.0 (2) | 75.0 |" in markdown


def test_avg_is_empty_when_a_task_is_missing(tmp_path):
  _run(tmp_path, "a2w", "srdc", 0, 0.8)
  _run(tmp_path, "d2a", "srdc", 0, 0.6)
  _run(tmp_path, "a2w", "source_only", 0, 0.5)
  mean, _, _ = report.results_table(report.collect_runs([str(tmp_path)]))
  assert np.isnan(mean.loc["source_only", "Avg"])


def test_per_class_table(tmp_path):
  _run(tmp_path, "visda", "srdc", 0, 0.7, {"car": 0.5, "bus": 0.9})
  _run(tmp_path, "visda", "srdc", 1, 0.7, {"car": 0.7, "bus": 0.7})
  table = report.per_class_table(report.collect_runs([str(tmp_path)]))
  np.testing.assert_allclose(table.loc[("srdc", "visda")].tolist(),
                             [60.0, 80.0, 70.0])  # car, bus, mean


def test_no_runs_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="no run_info.json"):
    report.collect_runs([str(tmp_path)])


def test_select_runs_keeps_tasks_in_order_and_seeds(tmp_path):
  for seed in (0, 1):
    for task, accuracy in (("a2w", 0.8), ("d2w", 0.9), ("w2a", 0.6)):
      _run(tmp_path, task, "srdc", seed, accuracy + 0.1 * seed)
  runs = report.select_runs(report.collect_runs([str(tmp_path)]),
                            tasks=["w2a", "a2w"], seeds=["1"])
  mean, _, count = report.results_table(runs)
  assert list(mean.columns) == ["w2a", "a2w", "Avg"]
  # Seed 1 only: w2a 70, a2w 90, Avg 80; d2w is left out of the Avg.
  np.testing.assert_allclose(mean.loc["srdc"].tolist(), [70.0, 90.0, 80.0])
  assert count.loc["srdc", "w2a"] == 1


@pytest.mark.parametrize("tasks, seeds, message", [
    (["a2w", "x2y"], None, r"--tasks: no runs of \['x2y'\]"),
    (None, ["3"], r"--seeds: no runs with seed \[3\]"),
    (None, ["one"], r"--seeds must be integers, got \['one'\]"),
])
def test_select_runs_names_what_is_missing(tmp_path, tasks, seeds, message):
  _run(tmp_path, "a2w", "srdc", 0, 0.8)
  with pytest.raises(ValueError, match=message):
    report.select_runs(report.collect_runs([str(tmp_path)]), tasks, seeds)


def _run_with_settings(root, name, seed, **settings):
  folder = root / name
  folder.mkdir(parents=True)
  (folder / "run_info.json").write_text(json.dumps(
      {"task": "office31/a2w", "method": "srdc", "seed": seed,
       "target_accuracy": 0.8,
       "settings": {"lr": 0.01, "seed": seed, "model_dir": str(folder),
                    "verbose": 2, **settings}}))


def test_a_cell_never_mixes_settings(tmp_path):
  _run_with_settings(tmp_path, "a", 0)
  _run_with_settings(tmp_path, "b", 1, verbose=0)  # Same run settings.
  assert len(report.collect_runs([str(tmp_path)])) == 2
  _run_with_settings(tmp_path, "c", 2, lr=0.02)
  with pytest.raises(ValueError, match=r"other settings \(lr differ\)"):
    report.collect_runs([str(tmp_path)])


def test_a_setting_newer_than_a_record_counts_at_its_default(tmp_path):
  # A run recorded before `target_eval_list_root` existed, beside one
  # recorded after with it at its default: one cell. (It was refused with
  # "( differ)": the recorded texts differed, no setting did.)
  _run_with_settings(tmp_path, "old", 0)
  _run_with_settings(tmp_path, "new", 1, target_eval_list_root=None)
  assert len(report.collect_runs([str(tmp_path)])) == 2
  _run_with_settings(tmp_path, "other", 2, target_eval_list_root="x")
  with pytest.raises(ValueError,
                     match=r"\(target_eval_list_root differ\)"):
    report.collect_runs([str(tmp_path)])


def test_a_run_from_before_refinement_is_a_run_without_it(tmp_path):
  # Recorded before `refinement_epochs` existed: the paper's method, one
  # cell with a run that records 0, never with one that refined.
  _run_with_settings(tmp_path, "old", 0)
  _run_with_settings(tmp_path, "new", 1, refinement_epochs=0)
  assert len(report.collect_runs([str(tmp_path)])) == 2
  _run_with_settings(tmp_path, "refined", 2, refinement_epochs=5)
  with pytest.raises(ValueError, match=r"\(refinement_epochs differ\)"):
    report.collect_runs([str(tmp_path)])


def test_a_seed_counts_once(tmp_path):
  _run_with_settings(tmp_path, "a", 0)
  _run_with_settings(tmp_path, "copy_of_a", 0)
  with pytest.raises(ValueError, match=r"seed \[0\] of office31/a2w / srdc "
                     "appears more than once"):
    report.collect_runs([str(tmp_path)])
