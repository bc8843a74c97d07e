"""Writes that fail with a message, not a crash: disk full, quota, file size
limits and permissions.

A write that runs out of space inside HDF5 (Keras' `.weights.h5`, the
backups) leaves h5py objects that crash the interpreter when it exits
(rc 139, measured on a 300 KB tmpfs). So every large write of a run (a
backup, `model.keras`, an export) is checked before it starts: the free
space of its file system, and the process' file size limit, must hold an
estimate of what is written (`check_room`); a write that fails anyway is
turned into one `WriteFailedError` naming what was written, where, why,
and what was left intact (`guarded`). The binaries print it as one line
and exit with status 1 without running the interpreter's shutdown
(`srdc_tf.cli`).
"""

import contextlib
import errno
import os
import resource
import shutil

# Errors of the file system rather than of the program: these end a binary
# with one message and status 1.
FILE_SYSTEM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                      errno.EACCES, errno.EPERM)
# Added to every estimate: file metadata, JSON records, SavedModel graphs.
MARGIN_BYTES = 8 * 2**20
# HDF5 and checkpoint overhead per stored variable, in bytes.
PER_VARIABLE_BYTES = 4096


class WriteFailedError(OSError):
  """A file could not be written; the message says what, where and why,
  and what is left as it was.

  Args:
    message: the message.
    error_number: the `errno` of the cause.
  """

  def __init__(self, message, error_number=errno.ENOSPC):
    super().__init__(message)
    self.errno = error_number


def estimate_bytes(variables):
  """What storing `variables` takes on disk, roughly and from above.

  Args:
    variables: Keras or TensorFlow variables (anything with `shape` and
      `dtype`).

  Returns:
    Bytes: their values, plus `PER_VARIABLE_BYTES` each and `MARGIN_BYTES`.
  """
  total = MARGIN_BYTES
  for variable in variables:
    count = 1
    for dim in variable.shape:
      count *= int(dim)
    size = getattr(variable.dtype, "size", None) or 4
    total += count * size + PER_VARIABLE_BYTES
  return total


def process_alive(pid):
  """Whether process `pid` runs on this machine: a staging file or folder
  named after a live writer must not be cleaned up under it.

  Args:
    pid: a process id.

  Returns:
    True when it runs (someone else's process included).
  """
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Someone else's process.
    return True
  return True


def _existing_folder(path):
  """`path` or its nearest ancestor that exists."""
  path = os.path.abspath(path)
  while not os.path.exists(path):
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  return path


def _megabytes(count):
  return f"{count / 2**20:.1f} MB"


def check_room(folder, needed_bytes, what, intact=""):
  """Refuses a write of about `needed_bytes` into `folder` that cannot fit.

  Args:
    folder: where the write goes (it need not exist yet).
    needed_bytes: the estimate of what is written.
    what: what is written, for the message ("the backup ckpt-000000004").
    intact: what stays as it was, for the message.

  Raises:
    WriteFailedError: the file system has less free space, or the
      process' file size limit (`ulimit -f`) is smaller, than needed.
  """
  where = _existing_folder(folder)
  free = shutil.disk_usage(where).free
  problem = None
  if free < needed_bytes:
    problem = (f"the disk is full: {_megabytes(free)} free on the file "
               f"system of {where!r}, about {_megabytes(needed_bytes)} needed")
  else:
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and limit < needed_bytes:
      problem = (f"the file size limit of this process (ulimit -f) is "
                 f"{_megabytes(limit)}, about {_megabytes(needed_bytes)} "
                 "needed")
  if problem:
    raise WriteFailedError(_message(what, folder, problem, intact,
                                    "nothing was written"))


def _message(what, path, problem, intact, done):
  text = f"cannot write {what} to {path!r}: {problem}; {done}"
  if intact:
    text += f", {intact}"
  return text + "."


def is_file_system_error(error):
  """Whether `error` (any exception) is a full disk, a quota, a file size
  limit or a permission problem rather than a bug."""
  if isinstance(error, OSError):
    return error.errno in FILE_SYSTEM_ERRNOS
  # TensorFlow's file errors (SavedModel, checkpoints) carry the C error
  # text only.
  text = str(error)
  return any(os.strerror(number) in text for number in FILE_SYSTEM_ERRNOS)


@contextlib.contextmanager
def guarded(what, path, intact="", cleanup=None):
  """Turns a file system error raised inside into a `WriteFailedError`.

  Args:
    what: what is written, for the message.
    path: where.
    intact: what stays as it was, for the message.
    cleanup: a path (file or folder) of the half-written output, removed
      when anything is raised inside, so that it frees its space.

  Yields:
    Nothing.

  Raises:
    WriteFailedError: the write failed for a file system reason.
  """
  try:
    yield
  except BaseException as error:
    # Half-written output is of no use whatever stopped it (a full disk,
    # another error, Ctrl-C during a long write).
    if cleanup and os.path.isdir(cleanup):
      shutil.rmtree(cleanup, ignore_errors=True)
    elif cleanup and os.path.lexists(cleanup):
      os.remove(cleanup)
    if (isinstance(error, WriteFailedError)
        or not is_file_system_error(error)):
      raise
    reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
    if "}}" in reason:  # TensorFlow's "{{function_node ...}}" prefix.
      reason = reason.split("}}", 1)[1].strip()
    raise WriteFailedError(
        _message(what, path, reason, intact,
                 "what was half written is removed"),
        getattr(error, "errno", None) or errno.EIO) from error
