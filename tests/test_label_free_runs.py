"""Label-free scores, model selection and the collapse guard in whole runs
(tiny synthetic runs of a few seconds of training each)."""

import dataclasses
import json
import os
import signal
import time

import keras
import numpy as np
import pandas as pd
from PIL import Image
import pytest
import tensorflow as tf

import run_testlib
import srdc_tf.models  # noqa: F401  Registers the classes model.keras names.
from srdc_tf import collapse_guard
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_settings
from srdc_tf import runner
from srdc_tf import selection
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import label_free_scores
from srdc_tf.data import pipeline
from srdc_tf.data import synthetic

SHORT = [*run_testlib.TINY_RUN, "--epochs=3", "--steps_per_epoch=3"]
SCORE_COLUMNS = ["score_entropy", "score_balance", "score_snd",
                 "score_largest_class_share"]


def _settings(model_dir, **changes):
  """The RunSettings of `TINY_RUN`."""
  return run_settings.RunSettings(**{
      "source": "synthetic:source", "target": "synthetic:target",
      "model_dir": str(model_dir), "synthetic_examples_per_class": 8,
      "image_size": 16, "bottleneck_dim": 16, "batch_size": 8,
      "backbone_lr_multiplier": 1.0, "kmeans_iterations": 2,
      "export_dir": "", "verbose": 0, "epochs": 3, "steps_per_epoch": 3,
      **changes})


def _scores_of_saved_model(model_dir, settings):
  """Recomputes the label-free scores of `model_dir/model.keras`."""
  data = run_data.load_data(settings)
  model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
  scorer = label_free_scores.LabelFreeScores(pipeline.eval_dataset(
      data.target, 128, settings.transform))
  return scorer.compute(model), scorer.last_predictions


@pytest.mark.e2e
def test_scores_are_logged_and_select_by_keeps_that_epoch(tmp_path):
  model_dir = tmp_path / "run"
  result = run_testlib.train(*SHORT, "--with_baseline", "--select_by=snd",
                             f"--model_dir={model_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((model_dir / "summary.json").read_text())
  metrics = pd.read_csv(model_dir / "metrics.csv")
  baseline_metrics = pd.read_csv(model_dir / "source_only" / "metrics.csv")
  for column in SCORE_COLUMNS + ["score_kmeans_agreement",
                                 "score_baseline_agreement"]:
    assert column in metrics.columns, column
    assert metrics[column].notna().all(), column
  for column in SCORE_COLUMNS:  # The baseline is scored too.
    assert column in baseline_metrics.columns, column
  assert "score_kmeans_agreement" not in baseline_metrics.columns
  tags = {value.tag for folder, _, files in os.walk(model_dir / "logs")
          for name in files if name.startswith("events.out.tfevents")
          for event in tf.compat.v1.train.summary_iterator(
              os.path.join(folder, name))
          for value in event.summary.value}
  assert {"epoch_" + column for column in SCORE_COLUMNS} <= tags, tags

  srdc = summary["srdc"]
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["selected_epoch"] == srdc["selected_epoch"]
  assert info["selection_score"] == srdc["selection_score"]
  assert srdc["select_by"] == "snd" and srdc["exported"] == "srdc"
  # Every epoch's scores, as in metrics.csv; the selected epoch is the one
  # the pure selection picks from them.
  rows = {int(row["epoch"]): {name[len("score_"):]: row[name]
                              for name in metrics.columns
                              if name.startswith("score_")}
          for _, row in metrics.iterrows()}
  assert [row["epoch"] for row in srdc["epoch_scores"]] == [0, 1, 2]
  for row in srdc["epoch_scores"]:
    for name, value in row.items():
      if name != "epoch":
        assert value == pytest.approx(rows[row["epoch"]][name]), name
  max_share = srdc["selection_max_share"]
  epoch, value = selection.select_epoch(rows, "snd", max_share,
                                        exclude_after_herding=True)
  assert srdc["herding_epoch"] == selection.herding_epoch(rows, max_share)
  assert (srdc["selected_epoch"], srdc["selection_score"]) == (
      epoch, pytest.approx(value))
  assert srdc["target_accuracy"] == pytest.approx(
      metrics["val_target_accuracy"][epoch])
  # model.keras holds that epoch's weights: its scores are that row's.
  settings = _settings(model_dir)
  recomputed, predictions = _scores_of_saved_model(model_dir, settings)
  for name in ("entropy", "balance", "snd", "largest_class_share",
               "kmeans_agreement"):
    assert recomputed[name] == pytest.approx(rows[epoch][name],
                                             rel=1e-4, abs=1e-5), name
  if epoch != 2:  # Not the last epoch's weights.
    assert recomputed["entropy"] != pytest.approx(rows[2]["entropy"],
                                                  rel=1e-6)
  np.testing.assert_array_equal(
      np.load(model_dir / collapse_guard.PREDICTIONS_FILE), predictions)
  baseline = summary["source_only"]
  assert baseline["exported"] == "source_only"
  assert set(baseline["scores"]) == {"entropy", "balance", "snd",
                                     "largest_class_share"}


def _identical_images_folder(root, examples_per_class=8):
  """A target of the synthetic classes whose images are all the same one:
  every prediction is the same, the predictions collapse."""
  image = Image.fromarray(np.full((16, 16, 3), 90, np.uint8))
  for name in synthetic.CLASS_NAMES:
    folder = root / name
    folder.mkdir(parents=True)
    for index in range(examples_per_class):
      image.save(folder / f"{index}.png")
  return root


@pytest.mark.e2e
def test_collapsing_run_prints_and_records_the_warning(tmp_path):
  target = _identical_images_folder(tmp_path / "identical")
  model_dir = tmp_path / "run"
  result = run_testlib.train(*run_testlib.TINY_RUN, "--epochs=2",
                             "--steps_per_epoch=2", f"--target={target}",
                             f"--model_dir={model_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [line for line in result.stderr.splitlines()
           if "WARNING collapse guard: " in line]
  # absl prefixes the level, time and place; the message starts WARNING.
  assert any("] WARNING collapse guard: score_largest_class_share=1.000 at "
             "epoch 2 (epoch=1 in metrics.csv) of the srdc model" in line
             for line in lines), result.stderr[-3000:]
  summary = json.loads((model_dir / "summary.json").read_text())
  warnings = summary["srdc"]["warnings"]
  assert "score_largest_class_share" in [w["score"] for w in warnings]
  assert all(w["epoch"] == 1 for w in warnings if w["kind"] == "collapse")
  # Collapsed from its first epoch: it never spread, so it neither herded
  # nor was unstable (the collapse of the model kept is the finding).
  assert not [w for w in warnings if w["kind"] == "unstable"]
  assert summary["srdc"]["herding_epoch"] is None
  assert summary["srdc"]["exported"] == "srdc"  # --on_collapse=warn.
  assert "collapse-guard warning(s)" in result.stdout


def test_fallback_needs_a_baseline(tmp_path):
  result = run_testlib.train(*run_testlib.TINY_RUN, "--on_collapse=fallback",
                             f"--model_dir={tmp_path}")
  assert result.returncode != 0
  assert "--on_collapse=fallback needs --with_baseline" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("changes", [
    {},
    # A top trained on cached activations: model.keras and the export hold
    # the whole network, into which the baseline's weights must go.
    {"trainable_layers": 2, "cached_views": 2},
], ids=["whole_network", "cached_top"])
def test_fallback_exports_the_source_only_baseline(tmp_path, changes):
  strategy = tf.distribute.get_strategy()
  settings = _settings(tmp_path / "srdc", on_collapse="fallback",
                       export_dir=str(tmp_path / "export"), **changes)
  data = run_data.load_data(settings)
  frozen = data.frozen_backbone
  assert (frozen is not None) == bool(changes)
  # A baseline that did not collapse: trained until it separates its
  # target, here the source's own images.
  baseline_settings = settings.replace(
      source_only=True, model_dir=str(tmp_path / "source_only"),
      export_dir="", epochs=4, steps_per_epoch=6, lr=0.05)
  baseline_data = run_data.RunData(data.source, data.source, data.source,
                                   frozen)
  baseline = runner.run(baseline_settings, baseline_data, strategy)
  assert baseline["warnings"] == [], baseline["warnings"]
  # The adapted run's target: one image (all its views) repeated, so it
  # collapses.
  collapsed = dataclasses.replace(
      data.target, name="identical",
      images=np.repeat(np.asarray(data.target.images[:1]), len(data.target),
                       axis=0))
  result = runner.run(settings, run_data.RunData(data.source, collapsed,
                                                 collapsed, frozen), strategy,
                      baseline_dir=baseline_settings.model_dir)
  kinds = [warning["kind"] for warning in result["warnings"]]
  assert "collapse" in kinds and kinds[-1] == "fallback", kinds
  assert result["exported"] == "source_only"
  assert result["target_accuracy"] == baseline["target_accuracy"]
  # The exported (baseline's) scores on this run's target, for the record:
  # collapsed too, on these identical images.
  assert result["scores"]["largest_class_share"] == 1.0
  assert "kmeans_agreement" not in result["scores"]
  assert os.path.isdir(result["export"])
  saved = keras.models.load_model(tmp_path / "srdc" / "model.keras")
  reference = keras.models.load_model(tmp_path / "source_only" /
                                      "model.keras")
  for got, expected in zip(saved.get_weights(), reference.get_weights()):
    np.testing.assert_array_equal(got, expected)


@pytest.mark.e2e
def test_run_resumed_after_its_last_epoch_keeps_its_selection(tmp_path,
                                                              monkeypatch):
  strategy = tf.distribute.get_strategy()
  settings = _settings(tmp_path, select_by="balance", epochs=2,
                       steps_per_epoch=2)
  data = run_data.load_data(settings)
  # Killed after its last backup, before the backups are removed.
  monkeypatch.setattr(backup_lib.TrainingBackup, "remove", lambda self: None)
  first = runner.run(settings, data, strategy)
  again = runner.run(settings, data, strategy)
  assert again["resumed_from"] == 4
  # No epoch trained in this process: the backup's selection decides.
  for key in ("select_by", "selected_epoch", "selection_score",
              "epoch_scores", "target_accuracy"):
    assert again[key] == first[key], key
  assert first["select_by"] == "balance"
  assert [row["epoch"] for row in again["epoch_scores"]] == [0, 1]
  assert set(again["scores"]) >= {"entropy", "balance", "snd"}


@pytest.mark.e2e
def test_run_killed_mid_epoch_selects_among_all_its_epochs(
    tmp_path):
  model_dir = tmp_path / "run"
  args = [*run_testlib.TINY_RUN, "--epochs=3", "--steps_per_epoch=6",
          "--checkpoint_every_steps=1", "--select_by=entropy",
          f"--model_dir={model_dir}"]
  victim = run_testlib.start_training(*args, log_path=tmp_path / "log")
  try:
    deadline = time.time() + 240
    while True:
      assert victim.poll() is None, (tmp_path / "log").read_text()[-3000:]
      assert time.time() < deadline, "no mid-epoch backup in time"
      found = run_directory.checkpoints(str(model_dir / "backup"))
      if found and found[0][0] // 6 == 1 and found[0][0] % 6:
        break
      time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
  finally:
    run_testlib.stop(victim)
  step = run_directory.checkpoints(str(model_dir / "backup"))[0][0]
  resumed = run_testlib.train(*args)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed at step {step}" in resumed.stdout
  srdc = json.loads((model_dir / "summary.json").read_text())["srdc"]
  # Every epoch, those before the restart too (from the backup).
  assert [row["epoch"] for row in srdc["epoch_scores"]] == [0, 1, 2]
  assert srdc["select_by"] == "entropy"
  replayed = selection.select_epoch(
      {row["epoch"]: row for row in srdc["epoch_scores"]}, "entropy",
      max_share=srdc["selection_max_share"], exclude_after_herding=True)
  assert (srdc["selected_epoch"], srdc["selection_score"]) == replayed
  metrics = pd.read_csv(model_dir / "metrics.csv")
  assert list(metrics["epoch"]) == [0, 1, 2]
  assert "score_entropy" in metrics.columns
