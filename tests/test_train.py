"""The training binary end to end, and its flag checks.

The short form runs the built-in default for 2 tiny epochs; with
SRDC_FULL_TESTS=1 it runs the README's default command in full and checks
that SRDC beats the source-only baseline on it.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

import srdc_tf.models  # noqa: F401  Registers the classes model.keras names.
from srdc_tf import run_settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = os.environ.get("SRDC_FULL_TESTS") == "1"
SHORT = ["--epochs=2", "--steps_per_epoch=3", "--synthetic_examples_per_class=20"]


def train(*args, timeout=900):
  return subprocess.run(
      [sys.executable, "-m", "srdc_tf.train", *args], cwd=REPO,
      capture_output=True, text=True, timeout=timeout,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.e2e
def test_default_run_writes_everything(tmp_path):
  model_dir, export_dir = tmp_path / "run", tmp_path / "export"
  result = train("--flagfile=flags/default.cfg", f"--model_dir={model_dir}",
                 f"--export_dir={export_dir}", *([] if FULL else SHORT))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "=== Target accuracy" in result.stdout
  summary = json.loads((model_dir / "summary.json").read_text())
  assert set(summary) == {"source_only", "srdc"}
  metrics = pd.read_csv(model_dir / "metrics.csv")
  for column in ("loss", "source_output_loss", "source_f_loss",
                 "source_h_loss", "target_output_loss", "target_f_loss",
                 "target_h_loss", "target_diversity_loss", "l2_loss",
                 "source_accuracy",
                 "val_target_accuracy", "lambda", "learning_rate",
                 "kmeans_accuracy", "kmeans_agreement"):
    assert column in metrics.columns, column
  assert list(metrics["epoch"]) == list(range(len(metrics)))
  assert metrics["lambda"].iloc[0] == 0.0
  assert any(name.startswith("events.out.tfevents")
             for _, _, files in os.walk(model_dir / "logs") for name in files)
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["method"] == "srdc" and info["task"] == "default"
  assert os.path.isdir(export_dir / "1")
  model = keras.models.load_model(model_dir / "model.keras")
  assert model.num_classes == 6
  # The same command again reports both finished runs and trains nothing.
  baseline_info = (model_dir / "source_only" / "run_info.json").read_text()
  srdc_model = (model_dir / "model.keras").stat().st_mtime_ns
  again = train("--flagfile=flags/default.cfg", f"--model_dir={model_dir}",
                "--export_dir=", *([] if FULL else SHORT))
  assert again.returncode == 0, again.stderr[-3000:]
  reported = json.loads((model_dir / "summary.json").read_text())
  assert reported["srdc"]["reused"] is reported["source_only"]["reused"] is True
  assert reported["srdc"]["target_accuracy"] == summary["srdc"][
      "target_accuracy"]
  assert (model_dir / "model.keras").stat().st_mtime_ns == srdc_model
  # Interrupted after its baseline (no SRDC record), the command keeps the
  # finished baseline and trains SRDC.
  (model_dir / "run_info.json").unlink()
  again = train("--flagfile=flags/default.cfg", f"--model_dir={model_dir}",
                "--export_dir=", *([] if FULL else SHORT))
  assert again.returncode == 0, again.stderr[-3000:]
  assert "finished earlier" in again.stdout
  assert (model_dir / "source_only" / "run_info.json").read_text() == (
      baseline_info)
  resumed = json.loads((model_dir / "summary.json").read_text())
  assert resumed["source_only"]["reused"] is True
  assert resumed["source_only"]["target_accuracy"] == (
      summary["source_only"]["target_accuracy"])
  assert "reused" not in resumed["srdc"]
  if FULL:
    # The README's numbers: SRDC clearly beats source-only on the default.
    assert summary["srdc"]["target_accuracy"] > (
        summary["source_only"]["target_accuracy"] + 0.2), summary


@pytest.mark.parametrize("args, message", [
    (["--batch_size=0"], "--batch_size must be > 0, got 0"),
    (["--epochs=-1"], "--epochs must be > 0, got -1"),
    (["--backbone=vgg"], "--backbone must be one of"),
    (["--weights=/nonexistent.h5"], "no such file"),
    (["--no_such_flag=1"], "Unknown command line flag 'no_such_flag'"),
    (["--source=synthetic:nowhere"], "unknown synthetic domain"),
    (["--source=/nonexistent/folder"], "neither a directory nor an image list"),
])
def test_bad_flags_stop_before_training(tmp_path, args, message):
  model_dir = tmp_path / "run"
  result = train("--flagfile=flags/default.cfg", f"--model_dir={model_dir}",
                 *args, timeout=300)
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert not (model_dir / "metrics.csv").exists()


@pytest.mark.e2e
def test_frozen_backbone_run_exports_and_evaluates_on_images(tmp_path):
  model_dir, export_dir = tmp_path / "run", tmp_path / "export"
  result = train("--flagfile=flags/default.cfg", f"--model_dir={model_dir}",
                 f"--export_dir={export_dir}", "--freeze_backbone",
                 "--nowith_baseline", *SHORT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (model_dir / "backbone.keras").is_file()
  assert os.listdir(model_dir / "feature_cache")
  info = json.loads((model_dir / "run_info.json").read_text())
  assert sorted(info["per_class_accuracy"]) == sorted(
      ["disc", "square", "triangle", "cross", "ring", "bar"])
  # The heads take features; evaluation and the export put the backbone back.
  evaluation = subprocess.run(
      [sys.executable, "-m", "srdc_tf.evaluate", f"--model_dir={model_dir}",
       "--target=synthetic:target", "--synthetic_examples_per_class=20",
       f"--output_dir={tmp_path / 'eval'}"], cwd=REPO, capture_output=True,
      text=True, timeout=300)
  assert evaluation.returncode == 0, evaluation.stderr[-3000:]
  summary = pd.read_csv(tmp_path / "eval" / "summary.csv")
  assert summary["top1_accuracy"].iloc[0] == pytest.approx(
      info["target_accuracy"], abs=1e-6)
  exported = subprocess.run(
      [sys.executable, "-m", "srdc_tf.export", f"--model_dir={model_dir}",
       f"--export_dir={export_dir}"], cwd=REPO, capture_output=True,
      text=True, timeout=300)
  assert exported.returncode == 0, exported.stderr[-3000:]
  assert sorted(os.listdir(export_dir)) == ["1", "2"]


SHARED = os.environ.get("SRDC_SHARED_DIR",
                        os.path.join(os.path.dirname(REPO), "shared"))
TFDS_DIR = os.path.join(SHARED, "data", "tfds")
MOBILENET = os.path.join(SHARED, "weights",
                         "mobilenet_v2_imagenet_notop.weights.h5")


@pytest.mark.e2e
@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isdir(os.path.join(TFDS_DIR, "usps")),
                    reason=f"no prepared MNIST/USPS under {TFDS_DIR}")
def test_digits_flagfile_short_form(tmp_path):
  """flags/digits/usps2mnist.cfg on the real data; the full form is
  benchmarks/accuracy_digits.sh."""
  model_dir = tmp_path / "run"
  result = train("--flagfile=flags/digits/usps2mnist.cfg",
                 f"--tfds_data_dir={TFDS_DIR}", f"--model_dir={model_dir}",
                 "--export_dir=", *([] if FULL else
                                    # Adapt on the 10k test split, not 60k.
                                    ["--target=tfds:mnist:test", "--epochs=2",
                                     "--steps_per_epoch=20"]))
  assert result.returncode == 0, result.stderr[-3000:]
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["task"] == "digits/usps2mnist"
  assert len(info["per_class_accuracy"]) == 10
  # Even two short epochs learn digits: far above chance (10%).
  assert info["target_accuracy"] > 0.3


@pytest.mark.e2e
@pytest.mark.shared_data
@pytest.mark.skipif(not (os.path.isdir(os.path.join(SHARED, "data",
                                                    "office31"))
                         and os.path.isfile(MOBILENET)),
                    reason=f"no Office-31 or MobileNetV2 weights under {SHARED}")
def test_office31_flagfile_short_form(tmp_path):
  """flags/office31/d2w.cfg with the frozen offline MobileNetV2 (the
  smallest task); the full form is benchmarks/accuracy_office31.sh."""
  model_dir = tmp_path / "run"
  result = train("--flagfile=flags/office31/d2w.cfg",
                 f"--data_root={os.path.join(SHARED, 'data')}",
                 "--backbone=mobilenet_v2", f"--weights={MOBILENET}",
                 "--freeze_backbone", f"--model_dir={model_dir}",
                 "--export_dir=", *([] if FULL else ["--epochs=1"]))
  assert result.returncode == 0, result.stderr[-3000:]
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["task"] == "office31/d2w"
  assert len(info["per_class_accuracy"]) == 31
  assert info["target_accuracy"] > 0.5  # Chance is 3%.


@pytest.mark.parametrize("changes, method", [
    ({}, "srdc"),
    ({"source_only": True}, "source_only"),
    ({"source_regularization": False}, "srdc+no_source_regularization"),
    ({"feature_clustering": False, "soft_selection": False},
     "srdc+no_feature_clustering+no_soft_selection"),
    ({"detach_q": True}, "srdc+detach_q"),
    ({"recalibrate_batch_norm": False}, "srdc+moving_bn_statistics"),
    ({"lenet_dropout": 0.5}, "srdc+lenet_dropout=0.5"),
])
def test_method_names_the_switches_for_results_tables(changes, method):
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target",
      model_dir="unused")
  assert settings.replace(**changes).method == method


def _write_png(path, image):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(tf.io.encode_png(image).numpy())


@pytest.mark.e2e
def test_the_mnistm_flagfile_reads_mnistm_as_released(tmp_path):
  # MNIST-M's release: two folders of PNGs and a "<file> <digit>" list for
  # each, naming files of its own folder. Tiny stand-ins of both, and of
  # MNIST's classes (the flagfile's TFDS source is replaced by a folder).
  rng = np.random.default_rng(0)
  for split, first in (("train", 0), ("test", 1000)):
    lines = []
    # Other names in each folder, so that a list read from the wrong one
    # fails.
    for index in range(first, first + 20):
      name = f"{index:08d}.png"
      _write_png(tmp_path / "mnist_m" / f"mnist_m_{split}" / name,
                 rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
      lines.append(f"{name} {index % 10}")
    (tmp_path / "mnist_m" / f"mnist_m_{split}_labels.txt").write_text(
        "\n".join(lines) + "\n")
  for index in range(30):
    _write_png(tmp_path / "mnist" / str(index % 10) / f"{index}.png",
               rng.integers(0, 256, (28, 28, 1), dtype=np.uint8))
  model_dir = tmp_path / "run"
  result = train("--flagfile=flags/digits/mnist2mnistm.cfg",
                 f"--data_root={tmp_path}", f"--source={tmp_path / 'mnist'}",
                 "--epochs=1", "--steps_per_epoch=2", "--batch_size=8",
                 "--export_dir=", "--verbose=0", f"--model_dir={model_dir}")
  assert result.returncode == 0, result.stderr[-3000:]
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["task"] == "digits/mnist2mnistm"
  assert info["settings"]["colour_augmentation"] == "channel_inversion"
