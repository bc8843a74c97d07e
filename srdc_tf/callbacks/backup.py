"""Backs up the whole training state during `fit`, for resuming a run that
was killed, at an epoch boundary or in the middle of an epoch.

Why not `keras.callbacks.BackupAndRestore` (Keras 3.15): it saves every
`save_freq` batches but restores only the epoch number, so a run killed
mid-epoch replays the epoch from its first batch with the weights of its
middle; it overwrites `latest.weights.h5` in place, so a kill during the
write leaves a torn file as the latest; and every worker writes the same
path. `TrainingBackup` differs on each point:

- The state (`model.save_weights`: weights, optimizer slots and step
  count, the per-sample tables, lambda, the centres) goes with a JSON
  record of the position (epoch, step in the epoch, global step) into a
  staging folder, which is then renamed to `ckpt-<global step>`. A rename
  is atomic, so the newest `ckpt-*` is always complete; staging leftovers
  are ignored and cleaned up. The last `keep` backups are kept.
- The run resumes at the exact step: `runner.run` skips that many batches
  of the training stream (a pure function of the seed) and runs the rest
  of the interrupted epoch, whose per-epoch state is restored with the
  weights, not recomputed (see `EpochStateCallback.keep_restored_state`).
- Only the chief writes under `backup_dir`; the other workers write into a
  temporary folder that is deleted (`distribute.write_location`), and all
  of them restore from `backup_dir`, which must be on a shared file system.
- Dropout draws its masks from seed generators whose state
  `save_weights` leaves out; their state goes into the JSON record, so a
  resumed run draws the masks the uninterrupted one would.
- Model selection survives a restart: the best-scored epoch's weights and
  every epoch's label-free scores go into the backup too, so a resumed
  run keeps the epoch an uninterrupted one would.
- A state with NaN or infinite weights is never written: the run stops
  with `TrainingDivergedError` and the last good backup stays the newest.
- A backup that would not fit (free space, file size limit) is not
  started, and one whose write fails is removed: the run stops with a
  `write_guard.WriteFailedError` naming it, and the last good backup stays
  the newest.
"""

import dataclasses
import json
import os
import shutil

from absl import logging
import keras
import numpy as np

from srdc_tf import distribute
from srdc_tf import run_directory
from srdc_tf import write_guard
from srdc_tf.callbacks import divergence

STATE_FILE = "state.weights.h5"
# The model-selection copy (`BestEpochWeights.backup_state`): the best
# epoch's weights and target predictions.
BEST_FILE = "best_epoch.npz"
_STAGING_PREFIX = ".staging-"


@dataclasses.dataclass(frozen=True)
class ResumePoint:
  """Where a restored run stands.

  Attributes:
    epoch: the epoch to run next, or the one in progress when
      `step_in_epoch` > 0 (0-based).
    step_in_epoch: steps of `epoch` already done.
    global_step: steps done in all (`epoch * steps_per_epoch +
      step_in_epoch`).
    epoch_logs: what the per-epoch state of an interrupted epoch reported.
    path: the backup restored.
  """
  epoch: int
  step_in_epoch: int
  global_step: int
  epoch_logs: dict
  path: str


def _all_finite(model):
  for variable in model.weights:
    value = np.asarray(variable.numpy())
    if np.issubdtype(value.dtype, np.floating) and not np.all(
        np.isfinite(value)):
      return False, variable.path
  return True, None


class TrainingBackup(keras.callbacks.Callback):
  """Writes the training state every `save_every_steps` steps and at the end
  of every epoch, and restores the newest one (see the module docstring).

  Args:
    backup_dir: the run's backup folder (`<model_dir>/backup`).
    steps_per_epoch: S.
    epochs: E.
    run_record: a JSON-able dict of what makes a run this run (data sizes,
      batch size, seed, ...); a backup of another run is refused.
    save_every_steps: also back up every this many steps inside an epoch
      (0: at epoch ends only).
    epoch_state: the run's `EpochStateCallback`, whose report of the
      current epoch a mid-epoch backup keeps.
    keep: how many backups to keep.
    strategy: the distribution strategy (only its chief writes here).
    setting_defaults: the defaults of `run_record["settings"]`
      (`run_directory.setting_defaults`): a setting the backup predates
      counts at its default.
    selector: the run's `BestEpochWeights`, whose state (`backup_state`)
      is backed up and restored with the model's, or None.
  """

  def __init__(self, backup_dir, steps_per_epoch, epochs, run_record,
               save_every_steps=0, epoch_state=None, keep=2, strategy=None,
               setting_defaults=None, selector=None):
    super().__init__()
    if save_every_steps < 0:
      raise ValueError(
          f"save_every_steps must be >= 0, got {save_every_steps!r}")
    if keep < 1:
      raise ValueError(f"keep must be >= 1, got {keep!r}")
    self.backup_dir = backup_dir
    self.steps_per_epoch = int(steps_per_epoch)
    self.epochs = int(epochs)
    self.run_record = dict(run_record)
    self.save_every_steps = int(save_every_steps)
    self.epoch_state = epoch_state
    self.keep = int(keep)
    self.strategy = strategy
    self.setting_defaults = setting_defaults or {}
    self.selector = selector

  # === Restoring ===

  def restore(self, model):
    """Loads the newest backup into `model` (compiled, not yet trained).

    Args:
      model: the run's model; its optimizer is built here if need be.

    Returns:
      A `ResumePoint`, or None when there is no backup.

    Raises:
      ValueError: the backup belongs to a different run, or no backup can
        be read.
    """
    found = run_directory.checkpoints(self.backup_dir)
    if not found:
      return None
    if not model.optimizer.built:
      model.optimizer.build(model.trainable_variables)
    errors = []
    for _, path in found:
      try:
        with open(os.path.join(path, run_directory.POSITION_FILE)) as f:
          position = json.load(f)
      except (OSError, ValueError) as error:
        errors.append(f"{path}: {error}")
        continue
      self._check_same_run(path, position)
      try:
        model.load_weights(os.path.join(path, STATE_FILE))
        _restore_seed_states(model, position.get("seed_states", []), path)
        if self.selector is not None:
          self._restore_selection(path, position)
      except Exception as error:  # pylint: disable=broad-except
        # A file damaged after it was written (disk, copy): try the older.
        logging.warning("cannot restore %s (%s); trying an older backup",
                        path, error)
        errors.append(f"{path}: {error}")
        continue
      step = int(position["global_step"])
      epoch, in_epoch = divmod(step, self.steps_per_epoch)
      logging.info("resuming from %s: epoch %d, step %d of %d", path,
                   epoch + 1, in_epoch, self.steps_per_epoch)
      return ResumePoint(epoch=epoch, step_in_epoch=in_epoch,
                         global_step=step,
                         epoch_logs=position.get("epoch_logs") or {},
                         path=path)
    raise ValueError(f"no backup under {self.backup_dir!r} can be read: "
                     + "; ".join(errors))

  def _restore_selection(self, path, position):
    record = position.get("selection")
    if record is None:  # Written before backups kept it.
      return
    arrays = None
    if "best" in record:
      with np.load(os.path.join(path, BEST_FILE)) as saved:
        count = len(saved.files) - 1
        arrays = {"weights": [saved[f"w{i}"] for i in range(count)],
                  "predictions": saved["predictions"]}
    self.selector.restore_backup_state(record, arrays)

  def _check_same_run(self, path, position):
    saved = position.get("run", {})
    differ = {key: (saved.get(key), value)
              for key, value in self.run_record.items()
              if key != "settings" and saved.get(key) != value}
    if "settings" in self.run_record:
      differ.update({
          f"--{name}": (old, new) for name, old, new in
          run_directory.differences(saved.get("settings") or {},
                                    self.run_record["settings"],
                                    self.setting_defaults)})
    if differ:
      described = ", ".join(f"{key}: {old!r} there, {new!r} now"
                            for key, (old, new) in sorted(differ.items()))
      raise ValueError(
          f"the backup {path!r} is of a different run ({described}). Run "
          "with the settings it was written with to resume it, or delete "
          f"{self.backup_dir!r} to start over.")

  # === Writing ===

  def on_train_batch_end(self, batch, logs=None):
    if not self.save_every_steps:
      return
    step = int(self.model.optimizer.iterations.numpy())
    # An epoch's last step is backed up at the epoch's end, after the
    # validation pass.
    if step % self.save_every_steps == 0 and step % self.steps_per_epoch:
      self.save(step)

  def on_epoch_end(self, epoch, logs=None):
    self.save(int(self.model.optimizer.iterations.numpy()))

  def save(self, step):
    """Backs up the current state as of global step `step`.

    Raises:
      TrainingDivergedError: a weight is NaN or infinite (nothing written).
      write_guard.WriteFailedError: the disk is full (checked before
        writing) or the write failed; the last good backup stays.
    """
    finite, bad_variable = _all_finite(self.model)
    if not finite:
      raise divergence.TrainingDivergedError(
          f"variable {bad_variable!r} became NaN or infinite by "
          f"{divergence.position(step, self.steps_per_epoch, self.epochs)}; "
          f"training stopped. Last good checkpoint: {self.describe_latest()}."
          " Try a lower --lr.")
    in_epoch = step % self.steps_per_epoch
    position = {
        "global_step": step,
        "epoch": step // self.steps_per_epoch,
        "step_in_epoch": in_epoch,
        "steps_per_epoch": self.steps_per_epoch,
        "run": self.run_record,
        # The state of an interrupted epoch is restored, not recomputed, so
        # its report travels with it.
        "epoch_logs": (dict(self.epoch_state.epoch_logs)
                       if in_epoch and self.epoch_state is not None else {}),
        "seed_states": [np.asarray(state).tolist()
                        for state in _seed_states(self.model)],
    }
    best = None
    if self.selector is not None:
      position["selection"], best = self.selector.backup_state()
    name = f"ckpt-{step:09d}"
    what = f"the backup {name}"
    latest = run_directory.checkpoints(self.backup_dir)
    intact = (f"the last good backup, {latest[0][1]}, is intact" if latest
              else "")
    with distribute.write_location(self.backup_dir, self.strategy) as where:
      # A write that fails inside HDF5 crashes the interpreter later: a
      # backup that cannot fit is not started.
      write_guard.check_room(where, write_guard.estimate_bytes(
          self.model.weights + self.model.optimizer.variables
          + (best["weights"] if best else [])), what, intact)
      staging = os.path.join(where, f"{_STAGING_PREFIX}{name}-{os.getpid()}")
      with write_guard.guarded(what, where, intact, cleanup=staging):
        os.makedirs(where, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        self.model.save_weights(os.path.join(staging, STATE_FILE))
        if best:
          np.savez(os.path.join(staging, BEST_FILE),
                   predictions=best["predictions"],
                   **{f"w{i}": array for i, array in
                      enumerate(best["weights"])})
        with open(os.path.join(staging, run_directory.POSITION_FILE),
                  "w") as f:
          json.dump(position, f, indent=2)
          f.flush()
          os.fsync(f.fileno())
      final = os.path.join(where, name)
      if os.path.isdir(final):  # The same step again after a resume.
        shutil.rmtree(final)
      os.rename(staging, final)  # Atomic: the backup appears whole.
      self._prune(where)

  def _prune(self, where):
    for _, path in run_directory.checkpoints(where)[self.keep:]:
      shutil.rmtree(path, ignore_errors=True)
    # Only this process writes here; any staging folder left is that of a
    # process that died while writing.
    for name in os.listdir(where):
      if name.startswith(_STAGING_PREFIX):
        shutil.rmtree(os.path.join(where, name), ignore_errors=True)

  def describe_latest(self):
    """The newest complete backup, for messages."""
    found = run_directory.checkpoints(self.backup_dir)
    if not found:
      return f"none under {self.backup_dir!r}"
    step, path = found[0]
    if step == 0:
      return f"{path} (before the first step)"
    return (f"{path} (after "
            f"{divergence.position(step, self.steps_per_epoch, self.epochs)})")

  def remove(self):
    """Deletes the backups of a finished run (on the chief)."""
    if distribute.is_chief(self.strategy):
      shutil.rmtree(self.backup_dir, ignore_errors=True)


def _seed_states(model):
  # Keras keeps them in `model.variables` but not in `model.weights`, which
  # is what `save_weights` writes.
  return [variable for variable in model.variables
          if variable.path.endswith("seed_generator_state")]


def _restore_seed_states(model, values, path):
  states = _seed_states(model)
  if len(values) != len(states):
    # Backups from before dropout was recorded have none: the masks then
    # differ from the uninterrupted run's, the weights are restored.
    logging.warning("%s records %d random-number states, the model has %d: "
                    "dropout masks will differ from an uninterrupted run",
                    path, len(values), len(states))
    return
  for state, value in zip(states, values):
    state.assign(np.asarray(value, dtype=state.dtype))
