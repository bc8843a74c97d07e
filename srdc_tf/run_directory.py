"""Claims a run directory for a command, before any long work.

A finished run directory is never overwritten by another command, and a
backup is never resumed by a run of other settings: the command that wrote
them resumes or reports its result; any other command is refused with the
settings that differ, and may pass `--overwrite`, which moves the old
directory aside (nothing is deleted), or use another `--model_dir`.
"""

import dataclasses
import json
import os
import re
import time

RUN_INFO_FILE = "run_info.json"
BACKUP_DIR = "backup"
# A backup is a `ckpt-<global step>` folder under BACKUP_DIR, complete once
# it holds its position record (`callbacks.backup` writes them).
POSITION_FILE = "position.json"
_CHECKPOINT = re.compile(r"^ckpt-(\d+)$")
# Settings that change where output goes or how much is printed, never
# what is trained: a run may be resumed or reported with other values.
# `model_dir` among them: a run is the folder that holds it, so the same
# folder named another way (relative, a trailing slash) or moved or copied
# elsewhere is still that run.
RUNTIME_ONLY = ("verbose", "export_dir", "checkpoint_every_steps",
                "worker_weights_dir", "feature_cache_dir", "model_dir")


class RunDirectoryInUse(ValueError):
  """The run directory holds a run of other settings."""


def comparable_settings(settings):
  """The settings that decide what a run trains, as JSON types.

  Args:
    settings: a `RunSettings` or the dict of one (`dataclasses.asdict`).

  Returns:
    A dict without the `RUNTIME_ONLY` fields.
  """
  if dataclasses.is_dataclass(settings):
    settings = dataclasses.asdict(settings)
  settings = json.loads(json.dumps(settings))
  return {key: value for key, value in settings.items()
          if key not in RUNTIME_ONLY}


def setting_defaults(settings):
  """What a `RunSettings`' field means in a record that lacks it, as
  `comparable_settings`: its default, or the `"unrecorded"` value its
  metadata names when the default changed since it was first recorded."""
  return comparable_settings({
      field.name: field.metadata.get("unrecorded", field.default)
      for field in dataclasses.fields(settings)
      if field.default is not dataclasses.MISSING})


def differences(old, new, defaults=None):
  """`[(name, old value, new value)]` of the settings that differ.

  A setting that `old` does not record (it was recorded before the setting
  existed) counts at its default, or at the value its field's metadata
  names `"unrecorded"` where the default changed since (the behaviour of
  every run before the setting existed): no difference when `new` has it.

  Args:
    old: the recorded settings (a dict).
    new: a `RunSettings`, or a dict of one.
    defaults: the settings' defaults; taken from `new` when it is a
      `RunSettings` and None is given.

  Returns:
    A list of `(name, old value, new value)`, sorted by name.
  """
  if defaults is None:
    defaults = (setting_defaults(new) if dataclasses.is_dataclass(new)
                else {})
  old, new = comparable_settings(old), comparable_settings(new)
  old = {**{name: value for name, value in defaults.items()
            if name in new}, **old}
  return [(name, old.get(name), new.get(name))
          for name in sorted(set(old) | set(new))
          if old.get(name) != new.get(name)]


def read_json(path):
  """The JSON value of a run file, or an error that names the file.

  Args:
    path: a JSON file (`run_info.json`, `classes.json`, ...).

  Returns:
    The parsed value.

  Raises:
    FileNotFoundError: there is no such file.
    ValueError: it is not valid UTF-8 JSON (truncated or corrupt), naming
      it and where it breaks.
  """
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except FileNotFoundError:
    raise
  except (ValueError, OSError) as error:
    raise ValueError(f"{path!r} is truncated or corrupt (not valid JSON: "
                     f"{error})") from error


def checkpoints(backup_dir):
  """Complete backups under `backup_dir`, newest first, as (step, path)."""
  if not os.path.isdir(backup_dir):
    return []
  found = []
  for name in os.listdir(backup_dir):
    match = _CHECKPOINT.match(name)
    path = os.path.join(backup_dir, name)
    if match and os.path.isfile(os.path.join(path, POSITION_FILE)):
      found.append((int(match.group(1)), path))
  return sorted(found, reverse=True)


def _recorded_settings(model_dir):
  """`(what, settings dict)` of the run in `model_dir`, or None: the
  finished run's `run_info.json`, else the newest backup's record."""
  path = os.path.join(model_dir, RUN_INFO_FILE)
  if os.path.exists(path):
    try:
      return "a finished run", dict(read_json(path)["settings"])
    except (OSError, ValueError, KeyError, TypeError) as error:
      raise ValueError(
          f"{path!r} cannot be read as a finished run's record ({error}); "
          "nothing was changed. Pass --overwrite to move the folder aside, "
          "or choose another --model_dir.") from error
  for _, path in checkpoints(os.path.join(model_dir, BACKUP_DIR)):
    try:
      with open(os.path.join(path, POSITION_FILE)) as f:
        record = json.load(f).get("run", {})
    except (OSError, ValueError):
      continue  # A torn backup; the resume skips it too.
    if "settings" in record:
      return "the backup of an unfinished run", record["settings"]
  return None


def _move_aside(model_dir):
  aside = (f"{model_dir.rstrip(os.sep)}.replaced-"
           f"{time.strftime('%Y%m%d-%H%M%S')}")
  os.rename(model_dir, aside)
  return aside


def claim(settings, overwrite=False):
  """Checks that `settings.model_dir` may be used by a run of `settings`.

  Args:
    settings: the `RunSettings` of the command.
    overwrite: move a run of other settings aside instead of refusing.

  Returns:
    None, or the folder the old run was moved to.

  Raises:
    RunDirectoryInUse: the folder holds a run (finished, or backed up) of
      other settings and `overwrite` is False; the message names the
      differing settings and both ways out.
    ValueError: a `run_info.json` there cannot be read (named).
  """
  model_dir = settings.model_dir
  if not os.path.isdir(model_dir):
    return None
  try:
    recorded = _recorded_settings(model_dir)
  except ValueError:
    if not overwrite:
      raise
    return _move_aside(model_dir)
  if recorded is None:
    return None
  what, old = recorded
  changed = differences(old, settings)
  if not changed:
    return None
  if overwrite:
    return _move_aside(model_dir)
  shown = "; ".join(f"--{name}: {old_value!r} there, {new_value!r} now"
                    for name, old_value, new_value in changed[:8])
  more = f" (and {len(changed) - 8} more)" if len(changed) > 8 else ""
  raise RunDirectoryInUse(
      f"--model_dir={model_dir!r} holds {what} with other settings "
      f"({shown}{more}). Nothing was changed. Run the same command to "
      "resume or report it, pass --overwrite to move it aside and start "
      "afresh, or choose another --model_dir.")


def finished_result(settings):
  """The result of a run that already finished in `settings.model_dir` with
  exactly these settings, or None.

  `runner.run` writes `run_info.json` last, after the model and its files,
  so its presence means the run is complete. A run whose recorded settings
  differ in anything but where output goes (`RUNTIME_ONLY`), or whose file
  cannot be read, does not count: it is trained again.

  Args:
    settings: the `RunSettings` of the run.

  Returns:
    The dict `runner.run` returned for it, or None.
  """
  path = os.path.join(settings.model_dir, RUN_INFO_FILE)
  try:
    with open(path) as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  # Where output goes and what is printed do not make it another run.
  if (not isinstance(info, dict) or not isinstance(info.get("settings"), dict)
      or differences(info["settings"], settings)):
    return None
  return {key: value for key, value in info.items()
          if key not in ("settings", "skipped_image_files")}
