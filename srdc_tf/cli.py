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
