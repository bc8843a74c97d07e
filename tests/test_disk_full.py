"""A full disk, a file size limit or a failed write ends a backup, a model
save or an export with one message naming it, and leaves the last good
backup and the earlier export versions as they were."""

import errno
import os
import resource
import shutil

import keras
import pytest
import tensorflow as tf

import run_testlib
import serving_testlib as lib
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf import write_guard
from srdc_tf.callbacks import backup as backup_lib


def _backup(tmp_path):
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
  model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
  model.optimizer.build(model.trainable_variables)
  backup = backup_lib.TrainingBackup(str(tmp_path / "backup"),
                                     steps_per_epoch=2, epochs=2,
                                     run_record={"seed": 0})
  backup.set_model(model)
  return backup, model


def _no_space(*args, **kwargs):
  del args, kwargs
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _tiny_disk(free):
  def disk_usage(path):
    del path
    return shutil._ntuple_diskusage(10**9, 10**9 - free, free)  # pylint: disable=protected-access
  return disk_usage


@pytest.mark.parametrize("how", ["write_fails", "no_room"])
def test_a_failed_backup_keeps_the_last_good_one(tmp_path, monkeypatch, how):
  backup, model = _backup(tmp_path)
  backup.save(2)
  good = run_directory.checkpoints(backup.backup_dir)
  assert [step for step, _ in good] == [2]
  before = sorted(os.listdir(good[0][1]))
  if how == "write_fails":
    monkeypatch.setattr(model, "save_weights", _no_space)
  else:
    monkeypatch.setattr(shutil, "disk_usage", _tiny_disk(10**5))
  with pytest.raises(write_guard.WriteFailedError) as error:
    backup.save(4)
  message = str(error.value)
  assert message.startswith(
      f"cannot write the backup ckpt-000000004 to '{backup.backup_dir}': ")
  assert f"the last good backup, {good[0][1]}, is intact" in message
  assert ("No space left on device" if how == "write_fails"
          else "the disk is full: 0.1 MB free") in message
  assert run_directory.checkpoints(backup.backup_dir) == good
  assert sorted(os.listdir(good[0][1])) == before
  assert os.listdir(backup.backup_dir) == [os.path.basename(good[0][1])]


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    tf.errors.ResourceExhaustedError(
        None, None, "saved_model/variables/variables_temp; No space left on "
        "device"),
    OSError(errno.EACCES, os.strerror(errno.EACCES)),
], ids=["enospc", "tensorflow_error", "permission"])
def test_a_failed_export_keeps_the_earlier_versions(monkeypatch, error):
  model = lib.tiny_model()
  base = lib.work_dir("disk_full")
  first = serving.export_saved_model(model, base, lib.CLASS_NAMES)

  def fail(module, staging, signatures):
    del module, signatures
    with open(os.path.join(staging, "saved_model.pb"), "w") as f:
      f.write("half")
    raise error

  monkeypatch.setattr(tf.saved_model, "save", fail)
  with pytest.raises(write_guard.WriteFailedError,
                     match=r"cannot write the export to '.*/\.export-[^']*': "
                     ".*; what was half written is removed, the earlier "
                     "versions are unchanged"):
    serving.export_saved_model(model, base, lib.CLASS_NAMES)
  assert os.listdir(base) == ["1"]
  assert os.path.isfile(os.path.join(first, "saved_model.pb"))


def test_an_export_that_cannot_fit_is_not_started(monkeypatch):
  base = lib.work_dir("no_room")
  monkeypatch.setattr(shutil, "disk_usage", _tiny_disk(2**20))
  with pytest.raises(write_guard.WriteFailedError,
                     match=r"cannot write the export to .*: the disk is full: "
                     r"1.0 MB free .*, about \d+\.\d MB needed; nothing was "
                     "written"):
    serving.export_saved_model(lib.tiny_model(), base, lib.CLASS_NAMES)
  assert os.listdir(base) == []


def test_a_model_that_cannot_fit_is_not_saved(tmp_path, monkeypatch):
  _, model = _backup(tmp_path)
  path = tmp_path / "model.keras"
  path.write_text("the earlier model")
  monkeypatch.setattr(shutil, "disk_usage", _tiny_disk(10**5))
  with pytest.raises(write_guard.WriteFailedError,
                     match="cannot write the model model.keras"):
    run_files.save_model(model, str(path))
  assert path.read_text() == "the earlier model"
  assert os.listdir(tmp_path) == ["model.keras"]


def _limit_file_size(limit):
  def preexec():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  return preexec


@pytest.mark.e2e
def test_a_run_out_of_room_stops_with_one_message(tmp_path):
  """The training binary with a 4 MB file size limit (as `ulimit -f`): the
  first backup is refused before writing, rc 1, no traceback, no crash."""
  import subprocess  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / "run"
  result = subprocess.run(
      run_testlib.train_command(*run_testlib.TINY_RUN, "--epochs=2",
                                "--steps_per_epoch=2",
                                f"--model_dir={model_dir}"),
      cwd=run_testlib.REPO, capture_output=True, text=True, timeout=300,
      env=run_testlib.environment(), preexec_fn=_limit_file_size(4 * 2**20))
  assert result.returncode == 1, result.stderr[-3000:]
  assert (f"error: cannot write the backup ckpt-000000002 to "
          f"'{model_dir / 'backup'}': the file size limit of this process "
          "(ulimit -f) is 4.0 MB") in result.stderr
  assert "Traceback" not in result.stderr
  assert not (model_dir / "backup").exists()
  assert not (model_dir / "model.keras").exists()
