"""Tests of benchmarks/score_correlation.py on tiny fake metrics.csv files."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import score_correlation  # noqa: E402  pylint: disable=wrong-import-position


@pytest.mark.parametrize("values, ranks", [
    ([10, 30, 20], [1, 3, 2]),
    ([5, 5, 1], [2.5, 2.5, 1]),  # Ties share their mean rank.
    ([2, 2, 2, 2], [2.5] * 4),
])
def test_rankdata_by_hand(values, ranks):
  np.testing.assert_allclose(score_correlation.rankdata(values), ranks)


@pytest.mark.parametrize("x, y, rho", [
    ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    # One swap: 1 - 6 * (0 + 1 + 1 + 0) / (4 * (16 - 1)) = 0.8.
    ([1, 2, 3, 4], [1, 3, 2, 4], 0.8),
    # Not linear, but monotone: 1.
    ([1, 2, 3], [1, 10, 1000], 1.0),
    ([1, 2, 3, float("nan")], [1, 2, 3, 0], 1.0),  # NaN pairs left out.
])
def test_spearman_by_hand(x, y, rho):
  assert score_correlation.spearman(x, y) == pytest.approx(rho)


@pytest.mark.parametrize("x, y", [([1, 1, 1], [1, 2, 3]), ([1], [2])])
def test_spearman_undefined_is_nan(x, y):
  assert math.isnan(score_correlation.spearman(x, y))


# Accuracy peaks at epoch 2; entropy falls all along (its oriented rho with
# accuracy: the negated entropy rises, accuracy rises then drops at 3);
# balance is best at 2, SND at 0.
METRICS = pd.DataFrame({
    "epoch": [0, 1, 2, 3],
    "val_target_accuracy": [0.2, 0.5, 0.9, 0.6],
    "score_entropy": [1.5, 1.0, 0.5, 0.2],
    "score_balance": [0.4, 0.7, 0.95, 0.8],
    "score_snd": [3.0, 2.5, 2.0, 2.2],
})


def test_analyse_run():
  result = score_correlation.analyse_run(METRICS)
  accuracy = result["accuracy"]
  assert accuracy["last"] == 0.6 and accuracy["best"] == 0.9
  assert accuracy["entropy"] == 0.6  # Lowest entropy: epoch 3.
  assert accuracy["balance"] == 0.9
  # SND is best at epoch 0, whose balance (0.4) is a collapse: epoch 1.
  assert accuracy["snd"] == 0.5
  assert math.isnan(accuracy["kmeans_agreement"])  # Not in this run.
  correlation = result["correlation"]
  assert correlation["balance"] == pytest.approx(1.0)  # Same order.
  # -entropy ranks 1 2 3 4, accuracy 1 2 4 3: 0.8.
  assert correlation["entropy"] == pytest.approx(0.8)
  # SND ranks 4 3 1 2 against 1 2 4 3: 1 - 6 * 20 / 60 = -1.
  assert correlation["snd"] == pytest.approx(-1.0)


@pytest.mark.parametrize("max_share, entropy_accuracy", [
    (None, 0.6),   # Epoch 3, the most confident.
    (0.5, 0.9),    # Epoch 3's largest class (0.7) is over it: epoch 2.
])
def test_analyse_run_excludes_epochs_over_the_share_limit(
    max_share, entropy_accuracy):
  metrics = METRICS.assign(score_largest_class_share=[0.2, 0.2, 0.3, 0.7])
  result = score_correlation.analyse_run(metrics, max_share)
  assert result["accuracy"]["entropy"] == entropy_accuracy


@pytest.mark.parametrize("method, entropy_accuracy", [
    # Epoch 1 herds (largest class 0.7 > 0.5 after epoch 0's 0.2): an
    # adaptation run keeps epoch 0; the source-only one the most confident
    # eligible epoch, 3.
    ("srdc", 0.2),
    ("source_only", 0.6),
])
def test_tables_exclude_epochs_after_a_herd_for_adaptation_runs(
    method, entropy_accuracy):
  metrics = METRICS.assign(score_balance=0.9,
                           score_largest_class_share=[0.2, 0.7, 0.3, 0.3])
  _, (columns, (row,)) = score_correlation.tables(
      [("run", "task", method, metrics, 0.5)])
  assert row[columns.index("by entropy")] == pytest.approx(
      100 * entropy_accuracy)


@pytest.mark.parametrize("record_file, record", [
    ("run_info.json", {"method": "source_only", "selection_max_share": 0.4}),
    ("summary.json", {"srdc": {"selection_max_share": 0.4}}),
])
def test_find_runs_reads_the_runs_share_limit(record_file, record, tmp_path):
  METRICS.to_csv(tmp_path / "metrics.csv", index=False)
  (tmp_path / record_file).write_text(json.dumps(record))
  (run,) = score_correlation.find_runs([str(tmp_path)])
  assert run[4] == 0.4


def test_analyse_run_needs_the_accuracy():
  with pytest.raises(ValueError, match="'val_target_accuracy' column"):
    score_correlation.analyse_run(METRICS.drop(columns="val_target_accuracy"))


def test_script_prints_both_tables(tmp_path):
  for seed in (0, 1):
    run = tmp_path / f"seed{seed}"
    run.mkdir()
    METRICS.to_csv(run / "metrics.csv", index=False)
    (run / "run_info.json").write_text(json.dumps(
        {"task": "digits/usps2mnist", "method": "srdc", "seed": seed}))
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "benchmarks",
                                    "score_correlation.py"),
       f"--run_dirs={tmp_path}"], capture_output=True, text=True,
      timeout=120, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert ("| digits/usps2mnist | srdc | 2 | 0.80 | 1.00 | -1.00 | - |"
          in lines), result.stdout
  assert ("| digits/usps2mnist | srdc | 2 | 60.00 | 60.00 | 90.00 | 50.00 "
          "| - | 90.00 |" in lines), result.stdout
