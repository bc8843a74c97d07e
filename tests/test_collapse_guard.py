"""Tests of srdc_tf.collapse_guard: the checks, the export choice of both
modes, and the baseline's record."""

import json
import logging

import numpy as np
import pytest

from srdc_tf import collapse_guard as guard_lib

BALANCED_SOURCE = np.full(6, 1 / 6)  # Share limit max(3 / 6, 0.3) = 0.5.
HEALTHY = {"entropy": 0.3, "balance": 0.95, "snd": 2.0,
           "largest_class_share": 0.2}
COLLAPSED = {"entropy": 0.01, "balance": 0.1, "snd": 3.5,
             "largest_class_share": 0.97}


@pytest.mark.parametrize("source_shares, limit", [
    (np.full(6, 1 / 6), 0.5),
    (np.full(31, 1 / 31), 0.3),  # The floor: 3 / 31 would be 0.097.
    ([0.5, 0.3, 0.2], 1.5),  # Never fires: (a) still can.
])
def test_share_limit(source_shares, limit):
  assert guard_lib.share_limit(source_shares) == pytest.approx(limit)


def test_a_healthy_model_has_no_finding():
  assert guard_lib.check_collapse(HEALTHY, BALANCED_SOURCE, 4) == []


@pytest.mark.parametrize("scores, fired", [
    ({"balance": 0.49, "largest_class_share": 0.2}, ["score_balance"]),
    ({"balance": 0.5, "largest_class_share": 0.5}, []),  # Limits included.
    ({"balance": 0.9, "largest_class_share": 0.51},
     ["score_largest_class_share"]),
    (COLLAPSED, ["score_balance", "score_largest_class_share"]),
    ({"balance": float("nan"), "largest_class_share": float("nan")}, []),
    ({}, []),
])
def test_collapse_checks(scores, fired):
  findings = guard_lib.check_collapse(scores, BALANCED_SOURCE, 7, "srdc")
  assert [finding.score for finding in findings] == fired
  for finding in findings:
    assert finding.kind == guard_lib.COLLAPSE and finding.epoch == 7
    assert finding.message.startswith("WARNING collapse guard: ")
    # The line names the score, its value and the epoch.
    assert f"{finding.score}={finding.value:.3f}" in finding.message
    assert "epoch=7 in metrics.csv" in finding.message


@pytest.mark.parametrize("name, model, baseline, worse", [
    ("snd", 1.0, 2.0, True),  # Higher is better.
    ("snd", 2.0, 1.0, False),
    ("snd", 2.0, 2.0, False),  # A tie is not worse.
    ("balance", 0.90, 0.96, True),
    ("balance", 0.95, 0.96, False),  # Within BASELINE_MARGIN = 0.05.
    ("entropy", 0.5, 0.2, True),  # Lower is better.
    ("entropy", 0.2, 0.5, False),
    ("kmeans_agreement", 0.2, None, False),  # The baseline has none.
])
def test_comparison_with_the_baseline(name, model, baseline, worse):
  findings = guard_lib.compare_with_baseline(
      {name: model}, {} if baseline is None else {name: baseline}, name,
      epoch=3, baseline_epoch=1)
  assert bool(findings) is worse
  if worse:
    (finding,) = findings
    assert finding.kind == guard_lib.WORSE_THAN_BASELINE
    assert finding.message.startswith(
        f"WARNING collapse guard: score_{name}={model:.4f} at epoch 4")
    assert f"baseline's {baseline:.4f}" in finding.message


_COLLAPSE = guard_lib.Finding(guard_lib.COLLAPSE, "srdc", "score_balance", 0.1,
                              0.5, 3, "")
_WORSE = guard_lib.Finding(guard_lib.WORSE_THAN_BASELINE, "srdc", "score_snd",
                           1.0, 2.0, 3, "")


@pytest.mark.parametrize("mode, findings, baseline_collapsed, ours, theirs, "
                         "exported", [
    ("warn", [_COLLAPSE], False, 1.0, 2.0, "adapted"),  # Warn only warns.
    ("fallback", [], False, 1.0, 2.0, "adapted"),  # Nothing fired.
    ("fallback", [_COLLAPSE], None, 1.0, 2.0, "adapted"),  # No baseline.
    ("fallback", [_COLLAPSE], False, 3.0, 2.0, "source_only"),
    ("fallback", [_COLLAPSE], True, 3.0, 2.0, "adapted"),  # Both: by score.
    ("fallback", [_COLLAPSE], True, 1.0, 2.0, "source_only"),
    ("fallback", [_COLLAPSE], True, 2.0, 2.0, "source_only"),  # Tie.
    ("fallback", [_WORSE], False, 1.0, 2.0, "source_only"),
    ("fallback", [_WORSE], True, 1.0, 2.0, "adapted"),  # Baseline collapsed.
])
def test_choose_export(mode, findings, baseline_collapsed, ours, theirs,
                       exported):
  assert guard_lib.choose_export(mode, findings, baseline_collapsed, ours,
                                 theirs, "snd") == exported


def test_bad_inputs_quote_the_value():
  with pytest.raises(ValueError, match="got 'ignore'"):
    guard_lib.choose_export("ignore", [], None, 1.0, 1.0, "snd")
  with pytest.raises(ValueError, match="score 'accuracy' has no direction"):
    guard_lib.compare_with_baseline({}, {}, "accuracy", 0, 0)
  with pytest.raises(ValueError, match="source_shares is empty"):
    guard_lib.share_limit([])


# === The wiring ===


def _baseline(tmp_path, scores, predictions=None, **info):
  tmp_path.mkdir(parents=True, exist_ok=True)
  (tmp_path / "run_info.json").write_text(json.dumps(
      {"scores": scores, "selected_epoch": 1, "target_accuracy": 0.4,
       **info}))
  if predictions is not None:
    np.save(tmp_path / guard_lib.PREDICTIONS_FILE, np.asarray(predictions))
  return guard_lib.read_baseline(str(tmp_path))


def test_read_baseline(tmp_path):
  baseline = _baseline(tmp_path, HEALTHY, predictions=[0, 1, 2])
  assert baseline.scores == HEALTHY and baseline.epoch == 1
  assert baseline.target_accuracy == 0.4
  np.testing.assert_array_equal(baseline.predictions, [0, 1, 2])
  assert baseline.model_path == str(tmp_path / "model.keras")
  # A run of an older version (no scores) or no run at all: no baseline.
  (tmp_path / "run_info.json").write_text(json.dumps({"target_accuracy": 1}))
  assert guard_lib.read_baseline(str(tmp_path)) is None
  assert guard_lib.read_baseline(str(tmp_path / "nowhere")) is None


HERDED = {"balance": 0.8, "largest_class_share": 0.62}  # Over 0.5.


@pytest.mark.parametrize("epoch_scores, kept, expected", [
    ({0: HEALTHY, 1: HEALTHY}, 1, None),
    # The kept epoch's own collapse is check (a)/(b)'s, not this one's.
    ({0: HEALTHY, 1: HERDED}, 1, None),
    # The worst share is named (epoch 2: 0.62 against epoch 1's 0.55).
    ({0: HEALTHY, 1: {"balance": 0.9, "largest_class_share": 0.55},
      2: HERDED, 3: HEALTHY}, 3, ("score_largest_class_share", 0.62, 2, 2)),
    # Balance alone: the lowest is named.
    ({0: HEALTHY, 1: {"balance": 0.3}, 2: {"balance": 0.2}, 3: HEALTHY}, 3,
     ("score_balance", 0.2, 2, 2)),
    # A start from a collapsed model that then spreads is not instability
    # (a barely trained source model); a collapse after spreading is.
    ({0: HERDED, 1: {"balance": 0.2}, 2: HEALTHY}, 2, None),
    ({0: HERDED, 1: HEALTHY, 2: HERDED, 3: HEALTHY}, 3,
     ("score_largest_class_share", 0.62, 2, 1)),
])
def test_check_training_finds_epochs_that_collapsed(epoch_scores, kept,
                                                    expected):
  findings = guard_lib.check_training(epoch_scores, BALANCED_SOURCE, kept)
  if expected is None:
    assert findings == []
    return
  (finding,) = findings
  score, value, epoch, count = expected
  assert finding.kind == guard_lib.UNSTABLE
  assert (finding.score, finding.epoch) == (score, epoch)
  assert finding.value == pytest.approx(value)
  assert finding.message.startswith(
      f"WARNING collapse guard: {count} of {len(epoch_scores)} epochs")
  assert f"{score}={value:.3f} at epoch {epoch}" in finding.message


@pytest.mark.parametrize("model, says, never_says", [
    ("srdc", "the adaptation was unstable: compare it with a source-only "
     "baseline (--with_baseline) before use.", "predictions on the target"),
    # The baseline adapted nothing and has no baseline of its own.
    (guard_lib.SOURCE_ONLY, "its predictions on the target were unstable.",
     "--with_baseline"),
])
def test_unstable_message_fits_the_model(model, says, never_says):
  (finding,) = guard_lib.check_training({0: HEALTHY, 1: HERDED, 2: HEALTHY},
                                        BALANCED_SOURCE, 2, model)
  assert finding.message.endswith(says)
  assert never_says not in finding.message


def test_guard_warns_on_a_run_that_collapsed_before_the_epoch_kept():
  outcome = guard_lib.guard("srdc", HEALTHY, 2, BALANCED_SOURCE, "entropy",
                            epoch_scores={0: HEALTHY, 1: HERDED, 2: HEALTHY})
  assert [f.kind for f in outcome.findings] == [guard_lib.UNSTABLE]
  assert outcome.exported == guard_lib.ADAPTED


def test_guard_warns_once_per_finding(caplog, tmp_path):
  baseline = _baseline(tmp_path, HEALTHY)
  with caplog.at_level(logging.WARNING):
    outcome = guard_lib.guard("srdc", COLLAPSED, 5, BALANCED_SOURCE, "last",
                              "warn", baseline)
  assert outcome.exported == guard_lib.ADAPTED
  kinds = [finding.kind for finding in outcome.findings]
  # Collapsed, and worse than the baseline on balance (`last` compares it).
  assert kinds == [guard_lib.COLLAPSE, guard_lib.COLLAPSE,
                   guard_lib.WORSE_THAN_BASELINE]
  assert outcome.findings[-1].score == "score_balance"
  lines = [record.getMessage() for record in caplog.records]
  assert lines == [finding.message for finding in outcome.findings]
  assert all(line.startswith("WARNING") for line in lines)


def test_guard_falls_back_to_a_healthy_baseline(tmp_path):
  baseline = _baseline(tmp_path, HEALTHY)
  outcome = guard_lib.guard("srdc", COLLAPSED, 5, BALANCED_SOURCE, "snd",
                            "fallback", baseline)
  assert outcome.exported == guard_lib.SOURCE_ONLY
  assert outcome.findings[-1].kind == guard_lib.FALLBACK
  assert "source-only baseline's" in outcome.findings[-1].message
  # The baseline is not compared with itself or told to fall back.
  itself = guard_lib.guard("source_only", COLLAPSED, 5, BALANCED_SOURCE,
                           "snd", "fallback")
  assert [f.kind for f in itself.findings] == [guard_lib.COLLAPSE] * 2
  assert itself.exported == guard_lib.ADAPTED


@pytest.mark.parametrize("select_by", ["last", "entropy", "snd", "balance"])
def test_guard_warns_when_adaptation_scores_worse(select_by, tmp_path):
  # Every selection compares on balance; the adapted model is 0.15 below.
  baseline = _baseline(tmp_path, {**HEALTHY, "balance": 0.95})
  adapted = {**HEALTHY, "balance": 0.8, "snd": 9.0, "entropy": 0.01}
  outcome = guard_lib.guard("srdc", adapted, 5, BALANCED_SOURCE, select_by,
                            "warn", baseline)
  assert [f.kind for f in outcome.findings] == [guard_lib.WORSE_THAN_BASELINE]
  assert outcome.findings[0].score == "score_balance"
  assert outcome.exported == guard_lib.ADAPTED
  # As balanced as the baseline: no warning, whatever the other scores.
  assert guard_lib.guard("srdc", {**adapted, "balance": 0.95}, 5,
                         BALANCED_SOURCE, select_by, "warn",
                         baseline).findings == []
