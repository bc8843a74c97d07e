"""What every binary of the package shares: short help, short usage errors,
a quiet TensorFlow start-up, and one line for a full disk or a permission
error.

- `--help` (and `--helpshort`, `-?`) lists the binary's own flags, one or
  two lines each, instead of absl's help of every module's flags; with a
  console script (`srdc-train`) absl's would even be empty, as it looks the
  flags up by `sys.argv[0]`. `--helpfull` keeps absl's full list.
- absl's `app.run` answers a `UsageError` with the whole flag help first
  (about 150 lines for the trainer), which scrolls the one line that says
  what was wrong out of sight; here it is one line and a pointer to
  `--help`.
- TensorFlow's start-up messages (C++ INFO and errors such as the cuInit
  failure on machines without a GPU, and its Python INFO lines) are hidden
  unless `--verbosity` is given, which then applies to TensorFlow too.
"""

import logging as std_logging
import os
import re
import sys
import textwrap

from absl import app
from absl import flags
from absl import logging as absl_logging

from srdc_tf import write_guard

FLAGS = flags.FLAGS
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_HELP_ARGS = ("--help", "-help", "-?", "--helpshort", "-helpshort")
# Lines of one flag in --help; --helpfull has the whole text.
_HELP_LINES = 2
# TF_CPP_MIN_LOG_LEVEL when --verbosity is not given: fatal messages only.
_QUIET_TF_CPP_LEVEL = "3"


def check_output_folder(flag, path):
  """`settings_checks.check_output_folder` for a binary: a bad folder flag
  is a usage error."""
  from srdc_tf import settings_checks  # pylint: disable=g-import-not-at-top
  try:
    settings_checks.check_output_folder(flag, path)
  except ValueError as error:
    raise app.UsageError(str(error)) from error


def _program():
  return os.path.basename(sys.argv[0]) if sys.argv else "srdc_tf"


def _own_module(name):
  """Whether flags registered under `name` belong to this package (a
  module name when imported, the file path when run with `python -m`)."""
  return (name.split(".")[0] == "srdc_tf"
          or os.path.abspath(name).startswith(_PACKAGE_DIR + os.sep))


def own_flags():
  """The flags the package's modules define, in definition order.

  Returns:
    A list of absl `Flag`s (absl's and TensorFlow's left out).
  """
  own = {id(flag) for module, module_flags in
         FLAGS.flags_by_module_dict().items() if _own_module(module)
         for flag in module_flags}
  seen, result = set(), []
  for name in FLAGS:
    flag = FLAGS[name]
    if id(flag) in own and id(flag) not in seen:
      seen.add(id(flag))
      result.append(flag)
  return result


def _flag_line(flag, required, width=79, column=28):
  """`--name=DEFAULT  help`, wrapped under the help's column."""
  if flag.flag_type() == "bool":
    usage = f"--[no]{flag.name}" + (" (on)" if flag.default else "")
  else:
    default = flag.default_as_str.strip("'") if flag.default is not None else ""
    usage = f"--{flag.name}={default}" if default else f"--{flag.name}"
  if required:
    usage += " (required)"
  text = _first_sentence(" ".join(flag.help.split()))
  if len(usage) + 4 > column:
    lines = [f"  {usage}"] + textwrap.wrap(
        text, width, initial_indent=" " * column,
        subsequent_indent=" " * column, max_lines=_HELP_LINES - 1,
        placeholder=" ...")
  else:
    lines = textwrap.wrap(text, width, initial_indent=f"  {usage:<{column - 2}}",
                          subsequent_indent=" " * column,
                          max_lines=_HELP_LINES, placeholder=" ...")
  return "\n".join(lines)


def _first_sentence(text):
  """`text` up to its first full stop followed by a space (or all of it)."""
  end = text.find(". ")
  return text if end < 0 else text[:end + 1]


def _required_flags():
  """Names of the flags marked required (absl keeps them as validators)."""
  names = set()
  for flag in own_flags():
    for validator in flag.validators:
      message = getattr(validator, "message", "")
      if "must have a value other than None" in str(message):
        names.add(flag.name)
  return names


def short_help(doc):
  """The binary's help: its docstring, then its own flags.

  Args:
    doc: the binary module's docstring.

  Returns:
    The text `--help` prints: each flag's default and the first sentence
    of its help, in at most two lines.
  """
  lines = [(doc or "").strip(), "", "flags:"]
  required = _required_flags()
  lines += [_flag_line(flag, flag.name in required) for flag in own_flags()]
  lines += ["", "--helpfull: every flag with its whole help, absl's "
            "(--flagfile, --verbosity, ...) included."]
  return "\n".join(lines) + "\n"


class _OwnInfoOnly(std_logging.Filter):
  """Keeps warnings and errors, and INFO lines from this package only."""

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING
            or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR))


def quiet_tensorflow(import_tensorflow=True):
  """Hides TensorFlow's start-up and INFO messages unless `--verbosity` was
  given; called after the flags are parsed, before TensorFlow is imported.

  TensorFlow 2.21 writes its C++ start-up lines (oneDNN, CUDA drivers)
  before its log level applies, so TensorFlow is imported here with the
  process' stderr closed; `TF_CPP_MIN_LOG_LEVEL=3` then hides the later
  C++ messages (the cuInit error on machines without a GPU), and a filter
  on absl's handler the INFO lines of other packages (checkpoint sharding,
  SavedModel assets). A Python error while importing is still shown.

  `--verbosity` given sets TensorFlow's C++ log level to match absl's
  (0: INFO and up, -1: warnings and up, ...) and shows everything. A
  `TF_CPP_MIN_LOG_LEVEL` set in the environment is always kept.

  Args:
    import_tensorflow: import TensorFlow now (quietly); False for a binary
      that does not use it.
  """
  verbosity = FLAGS["verbosity"]
  if verbosity.present:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL",
                          str(min(3, max(0, -int(verbosity.value)))))
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _QUIET_TF_CPP_LEVEL)
  absl_logging.get_absl_handler().addFilter(_OwnInfoOnly())
  if import_tensorflow and "tensorflow" not in sys.modules:
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      os.close(devnull)


def usage_error(message):
  """Prints `error: <message>` and the pointer to `--help`; exits with 1.

  Args:
    message: what was wrong, naming the flag, file or value.
  """
  sys.stderr.write(f"error: {message}\n(see {_program()} --help for the "
                   "flags)\n")
  sys.exit(1)


def parse_flags(argv):
  """absl's flag parsing, with a parse error as a `usage_error`."""
  try:
    return FLAGS(argv)
  except flags.Error as error:
    usage_error(flag_error_message(error))


def flag_error_message(error):
  """absl's message of a flag error, with its one line per missing
  required flag made one line naming them all."""
  missing = re.findall(r"Flag --(\w+) must have a value other than None",
                       str(error))
  if missing:
    return "missing required flag(s) " + ", ".join(f"--{name}"
                                                   for name in missing)
  return str(error)


def run(main, doc=None, tensorflow=True, **kwargs):
  """`app.run(main, **kwargs)` with the short help, the short usage errors
  and the quiet start-up of the module docstring.

  Args:
    main: the binary's `main(argv)`.
    doc: the binary's docstring, printed by `--help`.
    tensorflow: whether the binary uses TensorFlow (imported quietly
      before `main`).
    **kwargs: passed to `app.run` (e.g. `flags_parser`).
  """
  arguments = sys.argv[1:]
  if "--" in arguments:
    arguments = arguments[:arguments.index("--")]
  if any(argument in _HELP_ARGS for argument in arguments):
    sys.stdout.write(short_help(doc))
    sys.exit(0)

  def short_usage_errors(argv):
    quiet_tensorflow(import_tensorflow=tensorflow)
    try:
      return main(argv)
    except app.UsageError as error:
      usage_error(error)
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

  kwargs.setdefault("flags_parser", parse_flags)
  app.run(short_usage_errors, **kwargs)
