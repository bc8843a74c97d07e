"""One command at a time in a run directory.

Two training commands given the same `--model_dir` (a benchmark script
started twice, a command re-run in a second terminal while the first still
trains) both pass `run_directory.claim`, which only compares settings, and
then write the same metrics, backups and TensorBoard files: each crashes or,
worse, resumes from the other's backup. A command therefore holds an
exclusive lock on its run directory from before it looks inside until it
ends. The lock is the kernel's (`flock`), so it is released when the holder
exits in any way, a `kill -9` included: a lock file left behind by a killed
run never blocks the next one.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import time

from absl import logging

LOCK_FILE = ".run.lock"


class RunDirectoryLocked(ValueError):
  """Another live command holds the run directory."""


def _holder(path):
  """What the lock file at `path` says about its holder, for a message."""
  try:
    with open(path, encoding="utf-8") as record:
      holder = json.load(record)
    return (f"process {holder['pid']} on {holder['host']}, since "
            f"{holder['since']}")
  except (OSError, ValueError, KeyError, TypeError):
    return "a process that has not recorded itself yet"


def _lock(path):
  """Opens and locks the file at `path`; returns its descriptor, or None
  where the file system has no locks (a warning then says so).

  Raises:
    RunDirectoryLocked: another open file holds the lock.
  """
  while True:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      os.close(descriptor)
      if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise RunDirectoryLocked(_holder(path)) from error
      logging.warning("Cannot lock %s (%s); nothing stops a second command "
                      "from using this run directory at the same time.",
                      path, error)
      return None
    # The holder before us may have removed the file between our open and
    # our lock: then we hold a lock on a file no one else can find.
    try:
      same = os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
      same = False
    if same:
      return descriptor
    os.close(descriptor)


def _record(descriptor):
  os.ftruncate(descriptor, 0)
  os.write(descriptor, json.dumps({
      "pid": os.getpid(), "host": socket.gethostname(),
      "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode())


@contextlib.contextmanager
def hold(model_dir):
  """Holds `model_dir` for this command, creating it if needed.

  On exit the lock file is removed, and so is the folder if this call
  created it and nothing else was written into it (a command refused
  before any work leaves nothing behind).

  Args:
    model_dir: the run directory.

  Yields:
    None.

  Raises:
    RunDirectoryLocked: another command holds it; the message names the
      folder, the holder and what to do.
  """
  created = not os.path.isdir(model_dir)
  os.makedirs(model_dir, exist_ok=True)
  path = os.path.join(model_dir, LOCK_FILE)
  try:
    descriptor = _lock(path)
  except RunDirectoryLocked as error:
    raise RunDirectoryLocked(
        f"--model_dir={os.fspath(model_dir)!r} is in use by another command "
        f"({error}). "
        "Nothing was changed. Wait for it to end, stop it, or choose "
        "another --model_dir.") from None
  try:
    if descriptor is not None:
      _record(descriptor)
    yield
  finally:
    if descriptor is not None:
      # Removed while still locked, so no one can lock the old file after;
      # and only if it is still ours (`--overwrite` may have moved the
      # folder aside, and another command may hold the new one's).
      with contextlib.suppress(OSError):
        if os.path.samestat(os.fstat(descriptor), os.stat(path)):
          os.remove(path)
      os.close(descriptor)
    if created:
      with contextlib.suppress(OSError):
        os.rmdir(model_dir)  # Only if empty.
