"""A run directory is claimed before any work: a finished or backed-up run
of other settings is refused (nothing changed) or, with --overwrite, moved
aside; the same command reports or resumes it."""

import dataclasses
import json
import os

import pytest

import run_testlib
from srdc_tf import run_directory
from srdc_tf import run_settings


def _settings(model_dir, **changes):
  return run_settings.RunSettings(source="synthetic:source",
                                  target="synthetic:target",
                                  model_dir=str(model_dir), epochs=3, **changes)


def _finished(model_dir, settings):
  os.makedirs(model_dir, exist_ok=True)
  (model_dir / "run_info.json").write_text(json.dumps(
      {"target_accuracy": 0.5, "settings": dataclasses.asdict(settings)}))


def _backed_up(model_dir, settings):
  position = model_dir / "backup" / "ckpt-00000004"
  os.makedirs(position)
  (position / "position.json").write_text(json.dumps(
      {"global_step": 4,
       "run": {"settings": run_directory.comparable_settings(settings)}}))


def test_an_empty_or_new_folder_is_free(tmp_path):
  assert run_directory.claim(_settings(tmp_path / "new")) is None
  assert run_directory.claim(_settings(tmp_path)) is None


@pytest.mark.parametrize("record", [_finished, _backed_up])
def test_the_same_settings_may_use_it(record, tmp_path):
  record(tmp_path, _settings(tmp_path))
  # Where output goes and what is printed do not make it another run.
  assert run_directory.claim(_settings(tmp_path, verbose=0,
                                       export_dir="x")) is None


@pytest.mark.parametrize("record", [_finished, _backed_up])
def test_a_moved_or_renamed_run_folder_is_the_same_run(record, tmp_path):
  elsewhere = tmp_path / "before"
  record(tmp_path / "now", _settings(elsewhere))
  for name in (tmp_path / "now", f"{tmp_path / 'now'}/",
               os.path.relpath(tmp_path / "now")):
    assert run_directory.claim(_settings(name)) is None
    if record is _finished:
      assert run_directory.finished_result(_settings(name)) == {
          "target_accuracy": 0.5}


@pytest.mark.parametrize("record, what", [
    (_finished, "a finished run"),
    (_backed_up, "the backup of an unfinished run")])
@pytest.mark.parametrize("changes, named", [
    ({"lr": 0.02}, "--lr: 0.01 there, 0.02 now"),
    ({"image_size": 28}, "--image_size: 32 there, 28 now"),
    ({"source_only": True}, "--source_only: False there, True now"),
])
def test_other_settings_are_refused_and_nothing_changes(record, what, changes,
                                                         named, tmp_path):
  record(tmp_path, _settings(tmp_path))
  before = sorted(str(p) for p in tmp_path.rglob("*"))
  with pytest.raises(run_directory.RunDirectoryInUse) as error:
    run_directory.claim(_settings(tmp_path, **changes))
  message = str(error.value)
  assert what in message and named in message
  assert "--overwrite" in message and "another --model_dir" in message
  assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def _recorded_before(name):
  """A record made before setting `name` existed."""
  def record(model_dir, settings):
    _backed_up(model_dir, settings)
    path = next(model_dir.rglob("position.json"))
    position = json.loads(path.read_text())
    del position["run"]["settings"][name]
    path.write_text(json.dumps(position))
  return record


@pytest.mark.parametrize("changes, refused", [
    ({}, False),                          # At its default: the old behaviour.
    ({"diversity_floor": 0.5}, True),     # Away from it: another run.
])
def test_a_setting_newer_than_the_record_counts_at_its_default(
    changes, refused, tmp_path):
  _recorded_before("diversity_floor")(tmp_path, _settings(tmp_path))
  if not refused:
    assert run_directory.claim(_settings(tmp_path, **changes)) is None
    return
  with pytest.raises(run_directory.RunDirectoryInUse,
                     match="--diversity_floor: 1.0 there, 0.5 now"):
    run_directory.claim(_settings(tmp_path, **changes))


@pytest.mark.parametrize("epochs, changes, refused", [
    # A record from before neighbour refinement existed is of a run that
    # did not refine, whatever the default is now.
    (3, {}, None),  # Too short to refine by default.
    (50, {"refinement_epochs": 0}, None),
    (50, {}, "--refinement_epochs: 0 there, 5 now"),
    (3, {"refinement_epochs": 1}, "--refinement_epochs: 0 there, 1 now"),
])
def test_a_record_without_refinement_is_of_a_run_without_it(
    epochs, changes, refused, tmp_path):
  _recorded_before("refinement_epochs")(
      tmp_path, _settings(tmp_path).replace(epochs=epochs))
  # As `training.train` claims it: with the default filled in.
  settings = _settings(tmp_path, **changes).replace(epochs=epochs).resolved()
  if not refused:
    assert run_directory.claim(settings) is None
    return
  with pytest.raises(run_directory.RunDirectoryInUse, match=refused):
    run_directory.claim(settings)


def test_overwrite_moves_the_old_run_aside(tmp_path):
  model_dir = tmp_path / "run"
  _finished(model_dir, _settings(model_dir))
  aside = run_directory.claim(_settings(model_dir, lr=0.5), overwrite=True)
  assert aside.startswith(f"{model_dir}.replaced-")
  assert not model_dir.exists()
  assert json.loads(open(os.path.join(aside, "run_info.json")).read())[
      "target_accuracy"] == 0.5


def test_an_unreadable_record_is_named(tmp_path):
  (tmp_path / "run_info.json").write_text("{truncated")
  with pytest.raises(ValueError, match="run_info.json' cannot be read"):
    run_directory.claim(_settings(tmp_path))


@pytest.mark.e2e
def test_another_command_in_a_finished_folder_is_refused(tmp_path):
  model_dir = tmp_path / "run"
  args = [*run_testlib.TINY_RUN, "--epochs=1", "--steps_per_epoch=2",
          f"--model_dir={model_dir}"]
  first = run_testlib.train(*args)
  assert first.returncode == 0, first.stderr
  again = run_testlib.train(*args, "--verbose=0")
  assert again.returncode == 0, again.stderr
  assert "finished earlier" in again.stdout
  files = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*")}
  other = run_testlib.train(*args, "--source_only")
  assert other.returncode != 0
  assert "--source_only: False there, True now" in other.stderr
  assert "Traceback" not in other.stderr
  assert {p: p.stat().st_mtime_ns for p in model_dir.rglob("*")} == files


@pytest.mark.e2e
def test_a_finished_baseline_of_other_settings_is_refused(tmp_path):
  # The run folder holds no record of its own, its source_only/ a finished
  # run of other settings (e.g. an SRDC run that stopped before its first
  # backup, restarted with another --lr): refused before any training.
  model_dir = tmp_path / "run"
  baseline_dir = model_dir / "source_only"
  _finished(baseline_dir, _settings(baseline_dir, source_only=True))
  before = {str(p): p.read_bytes() for p in model_dir.rglob("*")
            if p.is_file()}
  result = run_testlib.train(*run_testlib.TINY_RUN, "--with_baseline",
                             f"--model_dir={model_dir}")
  assert result.returncode != 0
  assert (f"--model_dir={str(baseline_dir)!r} holds a finished run with "
          "other settings" in result.stderr), result.stderr[-2000:]
  assert {str(p): p.read_bytes() for p in model_dir.rglob("*")
          if p.is_file()} == before


def test_finished_result_needs_the_same_settings(tmp_path):
  settings = _settings(tmp_path)
  assert run_directory.finished_result(settings) is None  # Nothing there yet.
  (tmp_path / "run_info.json").write_text("{truncated")
  # Unreadable: train again.
  assert run_directory.finished_result(settings) is None
  record = {"target_accuracy": 0.5, "seed": 0, "skipped_image_files": {},
            "settings": dataclasses.asdict(settings)}
  (tmp_path / "run_info.json").write_text(json.dumps(record))
  assert run_directory.finished_result(settings) == {
      "target_accuracy": 0.5, "seed": 0}
  assert run_directory.finished_result(settings.replace(epochs=4)) is None
  assert run_directory.finished_result(settings.replace(seed=1)) is None
