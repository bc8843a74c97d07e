"""What every binary of the package shares: a short usage error.

absl's `app.run` answers a `UsageError` with the whole flag help first
(about 150 lines for the trainer), which scrolls the one line that says
what was wrong out of sight.
"""

import sys

from absl import app


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

  app.run(short_usage_errors, **kwargs)
