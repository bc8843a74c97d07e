"""What every binary of the package shares: a short usage error, and one
line for a full disk or a permission error.

absl's `app.run` answers a `UsageError` with the whole flag help first
(about 150 lines for the trainer), which scrolls the one line that says
what was wrong out of sight.
"""

import os
import sys

from absl import app

from srdc_tf import write_guard


def check_output_folder(flag, path):
  """Refuses a folder flag that cannot become a writable folder, before any
  work: the path is a file, lies inside a file, or cannot be written.

  Args:
    flag: the flag's name, for the message (without dashes).
    path: its value; empty or None passes (the output is off).

  Raises:
    app.UsageError: naming the flag, its value and what is wrong.
  """
  if not path:
    return
  if os.path.exists(path) and not os.path.isdir(path):
    raise app.UsageError(f"--{flag}={path!r} is a file, not a folder")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise app.UsageError(
        f"--{flag}={path!r} cannot be created: {existing!r} is a file")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise app.UsageError(
        f"--{flag}={path!r} cannot be written: no write permission on "
        f"{existing!r}")


def run(main, **kwargs):
  """`app.run(main, **kwargs)`, but a `UsageError` prints one line naming
  the problem and a pointer to the help, and exits with status 1.

  Args:
    main: the binary's `main(argv)`.
    **kwargs: passed to `app.run` (e.g. `flags_parser`).
  """
  def short_usage_errors(argv):
    try:
      return main(argv)
    except app.UsageError as error:
      program = sys.argv[0] if sys.argv else "srdc_tf"
      sys.stderr.write(f"error: {error}\n(see {program} --helpshort for "
                       "the flags)\n")
      sys.exit(1)
    except OSError as error:
      if not write_guard.is_file_system_error(error):
        raise
      # A full disk, a quota, a file size limit or a permission: one line,
      # then out without the interpreter's shutdown, in which the h5py
      # objects of a failed write crash it (rc 139).
      sys.stdout.flush()
      sys.stderr.write(f"error: {error}\n")
      sys.stderr.flush()
      os._exit(1)  # pylint: disable=protected-access

  app.run(short_usage_errors, **kwargs)
