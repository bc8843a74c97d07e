"""Resuming a killed run: the training stream, the backups, and a run
killed with SIGKILL mid-epoch that, started again, ends exactly where an
uninterrupted run ends."""

import json
import os
import signal
import time

import keras
import numpy as np
import pytest

import run_testlib
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import run_settings
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms

TIMEOUT = 240
STEPS, EPOCHS = 6, 3
ARGS = [*run_testlib.TINY_RUN, f"--epochs={EPOCHS}",
        f"--steps_per_epoch={STEPS}", "--checkpoint_every_steps=1",
        "--deterministic", "--nowith_baseline"]


def test_training_stream_restarts_at_any_step():
  source = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=3)
  target = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=2)
  transform = transforms.ImageTransform(12, resize_size=14, random_flip=True)
  whole = list(pipeline.train_dataset(source, target, 5, transform, seed=3)
               .take(9).as_numpy_iterator())
  resumed = list(pipeline.train_dataset(source, target, 5, transform, seed=3,
                                        start_step=6)
                 .take(3).as_numpy_iterator())
  for expected, got in zip(whole[6:], resumed):
    for key in expected:
      np.testing.assert_array_equal(expected[key], got[key], err_msg=key)


# === Backups ===


def _tiny_model():
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target", model_dir="",
      synthetic_examples_per_class=2, image_size=16, bottleneck_dim=4)
  data = run_data.load_data(settings)
  model = run_data.build_model(settings, data)
  model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
  model.optimizer.build(model.trainable_variables)
  return model


def _backup(path, **record):
  return backup_lib.TrainingBackup(str(path), steps_per_epoch=4, epochs=2,
                                   run_record={"seed": 0, **record})


def test_backup_interrupted_while_written_is_never_the_latest(tmp_path):
  model = _tiny_model()
  model.source_weights.assign(np.full(12, 0.25, np.float32))
  backup = _backup(tmp_path)
  backup.set_model(model)
  backup.save(3)

  def dies_while_writing(path, **kwargs):
    del kwargs
    with open(path, "wb") as f:
      f.write(b"\x89HDF half a file")
    raise KeyboardInterrupt("killed while writing")

  model.source_weights.assign(np.full(12, 0.5, np.float32))
  original = model.save_weights
  model.save_weights = dies_while_writing
  with pytest.raises(KeyboardInterrupt):
    backup.save(5)
  model.save_weights = original
  assert [step for step, _ in run_directory.checkpoints(str(tmp_path))] == [3]

  fresh = _tiny_model()
  point = _backup(tmp_path).restore(fresh)
  assert (point.epoch, point.step_in_epoch, point.global_step) == (0, 3, 3)
  np.testing.assert_array_equal(fresh.source_weights.numpy(), 0.25)
  # The next backup clears what the dead writer left behind.
  backup.save(6)
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
  assert [s for s, _ in run_directory.checkpoints(str(tmp_path))] == [6, 3]


def test_model_file_interrupted_while_written_keeps_the_old_one(tmp_path):
  model = _tiny_model()
  path = str(tmp_path / "model.keras")
  run_files.save_model(model, path)
  before = open(path, "rb").read()

  def dies_while_writing(target, **kwargs):
    del kwargs
    with open(target, "wb") as f:
      f.write(b"PK half a zip")
    raise KeyboardInterrupt("killed while writing")

  model.save = dies_while_writing
  with pytest.raises(KeyboardInterrupt):
    run_files.save_model(model, path)
  assert open(path, "rb").read() == before
  assert os.listdir(tmp_path) == ["model.keras"]


def test_backup_of_another_run_is_refused(tmp_path):
  backup = _backup(tmp_path, seed=0)
  backup.set_model(_tiny_model())
  backup.save(2)
  with pytest.raises(ValueError, match=r"different run \(seed: 0 there, 1 "
                     r"now\).*delete"):
    _backup(tmp_path, seed=1).restore(_tiny_model())


@pytest.mark.parametrize("new_floor, refused", [(1.0, False), (0.5, True)])
def test_a_setting_newer_than_the_backup_counts_at_its_default(
    new_floor, refused, tmp_path):
  old = backup_lib.TrainingBackup(str(tmp_path), 4, 2,
                                  {"settings": {"lr": 0.01}})
  old.set_model(_tiny_model())
  old.save(2)
  new = backup_lib.TrainingBackup(
      str(tmp_path), 4, 2,
      {"settings": {"lr": 0.01, "diversity_floor": new_floor}},
      setting_defaults={"lr": 0.01, "diversity_floor": 1.0})
  if refused:
    with pytest.raises(ValueError, match=r"--diversity_floor: 1.0 there, "
                       r"0.5 now"):
      new.restore(_tiny_model())
  else:
    assert new.restore(_tiny_model()).global_step == 2


def test_weights_gone_nan_are_never_backed_up(tmp_path):
  model = _tiny_model()
  backup = _backup(tmp_path)
  backup.set_model(model)
  backup.save(1)
  model.fc2.kernel.assign(np.full(model.fc2.kernel.shape, np.nan, np.float32))
  with pytest.raises(RuntimeError, match=r"fc2.*epoch 1/2, step 2/4.*Last "
                     r"good checkpoint: .*ckpt-000000001"):
    backup.save(2)
  assert [s for s, _ in run_directory.checkpoints(str(tmp_path))] == [1]


# === Killed and started again ===


def _latest_position(model_dir):
  found = run_directory.checkpoints(os.path.join(model_dir, "backup"))
  if not found:
    return None
  try:
    with open(os.path.join(found[0][1], run_directory.POSITION_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None  # Pruned meanwhile.


@pytest.mark.e2e
@pytest.mark.parametrize("extra", [
    # The whole network trained, with dropout: its masks come from seed
    # generators whose state the backup must carry (a run without dropout
    # has none, as in the case below).
    ["--lenet_dropout=0.5"],
    # The backbone's top trained on cached activations (`models.cut`).
    ["--trainable_layers=2", "--cached_views=2", "--random_translate=2"],
    # Its top held for the first epoch: killed after the release, resumed
    # with the switch set again.
    ["--trainable_layers=2", "--cached_views=2", "--random_translate=2",
     "--backbone_frozen_epochs=1"],
], ids=["whole_with_dropout", "cached_top", "cached_top_held_one_epoch"])
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path,
                                                                   extra):
  args = [*ARGS, *extra]
  whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
  processes = []
  try:
    processes.append(run_testlib.start_training(
        *args, f"--model_dir={whole_dir}", log_path=tmp_path / "whole.log"))
    victim = run_testlib.start_training(
        *args, f"--model_dir={killed_dir}", log_path=tmp_path / "killed.log")
    processes.append(victim)
    deadline = time.time() + TIMEOUT
    # Kill in the middle of the second epoch, once a backup is there.
    while True:
      assert victim.poll() is None, (tmp_path / "killed.log").read_text()
      assert time.time() < deadline, "no mid-epoch backup in time"
      position = _latest_position(killed_dir)
      if position and position["epoch"] == 1 and position["step_in_epoch"]:
        break
      time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    processes[0].wait(timeout=max(1, deadline - time.time()))
  finally:
    for process in processes:
      run_testlib.stop(process)
  assert processes[0].returncode == 0, (tmp_path / "whole.log").read_text()
  assert victim.returncode == -signal.SIGKILL
  position = _latest_position(killed_dir)
  assert position["epoch"] == 1 and 0 < position["step_in_epoch"] < STEPS, (
      "the run was not killed mid-epoch", position)

  resumed = run_testlib.train(*args, f"--model_dir={killed_dir}",
                              timeout=TIMEOUT)
  assert resumed.returncode == 0, resumed.stderr[-4000:]
  assert f"resumed at step {position['global_step']}" in resumed.stdout

  whole = run_testlib.read_weights(whole_dir / "model.keras")
  again = run_testlib.read_weights(killed_dir / "model.keras")
  assert set(whole) == set(again)
  for key in whole:  # Weights, tables, centres and optimizer state.
    np.testing.assert_array_equal(whole[key], again[key], err_msg=key)
  # The tables are in there, and they moved away from their initial values.
  assert any(value.dtype == np.int32 and value.size == 48 and value.any()
             for value in whole.values())
  assert any(value.dtype == np.float32 and value.shape == (48,)
             and not np.all(value == 1.0) for value in whole.values())
  if "--trainable_layers=2" not in extra:
    # (A cached top's model.keras is the whole network, rebuilt for raw
    # images without the optimizer; the backups hold its state.)
    assert int(run_testlib.find(whole, "/optimizer/vars/0")) == EPOCHS * STEPS
  # The same epoch kept, chosen among all three (the backup keeps the
  # best copy and every epoch's scores).
  finished = [json.loads((folder / "run_info.json").read_text())
              for folder in (whole_dir, killed_dir)]
  for key in ("selected_epoch", "target_accuracy", "epoch_scores"):
    assert finished[0][key] == finished[1][key], key
  assert len(finished[1]["epoch_scores"]) == EPOCHS
  # One metrics row per epoch, also across the restart.
  metrics = (killed_dir / "metrics.csv").read_text().splitlines()
  assert [row.split(",")[0] for row in metrics[1:]] == ["0", "1", "2"]
