"""One command at a time in a run directory: a second command is refused
before any work with the holder named; the lock dies with its holder."""

import json
import os
import signal
import subprocess
import sys

import pytest

import run_testlib
from srdc_tf import run_lock

# Holds a run directory's lock until killed.
_HOLDER = """
import sys, time
from srdc_tf import run_lock
with run_lock.hold(sys.argv[1]):
  print("held", flush=True)
  time.sleep(600)
"""


def _start_holder(model_dir):
  process = subprocess.Popen(
      [sys.executable, "-c", _HOLDER, str(model_dir)], cwd=run_testlib.REPO,
      stdout=subprocess.PIPE, text=True, env=run_testlib.environment())
  assert process.stdout.readline().strip() == "held"
  return process


def test_a_second_holder_is_refused_with_the_first_named(tmp_path):
  with run_lock.hold(tmp_path):
    record = json.loads((tmp_path / run_lock.LOCK_FILE).read_text())
    assert record["pid"] == os.getpid()
    with pytest.raises(run_lock.RunDirectoryLocked) as refused:
      with run_lock.hold(tmp_path):
        pass
  message = str(refused.value)
  assert f"--model_dir={str(tmp_path)!r} is in use by another command" in message
  assert f"process {os.getpid()} on " in message
  assert "Nothing was changed" in message


def test_release_removes_the_lock_file_and_a_folder_it_created(tmp_path):
  new = tmp_path / "new"
  with run_lock.hold(new):
    assert new.is_dir()
  assert not new.exists()  # Nothing else was written: nothing is left.
  with run_lock.hold(new):
    (new / "metrics.csv").write_text("epoch\n0\n")
  assert sorted(os.listdir(new)) == ["metrics.csv"]
  with run_lock.hold(new):  # Free again after a release.
    pass
  assert sorted(os.listdir(new)) == ["metrics.csv"]


def test_a_folder_moved_aside_keeps_its_lock_and_the_new_one_is_free(
    tmp_path):
  model_dir = tmp_path / "run"
  with run_lock.hold(model_dir):
    os.rename(model_dir, tmp_path / "aside")  # What --overwrite does.
    with run_lock.hold(model_dir):
      with pytest.raises(run_lock.RunDirectoryLocked):
        with run_lock.hold(model_dir):
          pass
    assert not model_dir.exists()
  # The first release does not remove a lock file that is not its own.
  assert not (tmp_path / "run").exists()


def test_the_lock_of_a_killed_holder_is_free(tmp_path):
  holder = _start_holder(tmp_path)
  try:
    with pytest.raises(run_lock.RunDirectoryLocked,
                       match=f"process {holder.pid} on "):
      with run_lock.hold(tmp_path):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
  assert (tmp_path / run_lock.LOCK_FILE).exists()  # Left by the kill...
  with run_lock.hold(tmp_path):  # ...and no obstacle.
    pass


@pytest.mark.e2e
def test_training_into_a_held_folder_is_refused_before_any_work(tmp_path):
  # The folder holds a finished run of other settings; with --overwrite a
  # free folder would be moved aside. A held one is not touched.
  model_dir = tmp_path / "run"
  model_dir.mkdir()
  (model_dir / "run_info.json").write_text(json.dumps(
      {"target_accuracy": 0.5, "settings": {"lr": 0.5}}))
  holder = _start_holder(model_dir)
  try:
    result = run_testlib.train(*run_testlib.TINY_RUN, "--with_baseline",
                               "--overwrite", f"--model_dir={model_dir}")
    assert result.returncode != 0
    assert (f"--model_dir={str(model_dir)!r} is in use by another command "
            f"(process {holder.pid} on " in result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(model_dir)) == [run_lock.LOCK_FILE,
                                             "run_info.json"]
    assert os.listdir(tmp_path) == ["run"]  # Nothing moved aside.
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
