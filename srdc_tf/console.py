"""What a user sees while a binary works: phase banners and progress.

One verbosity for the process (`set_verbose`, from `--verbose`): 0 prints
nothing here; 1 the phase banners and one line per epoch; 2 (the
trainer's default) also progress on long passes. Progress redraws one line
on a terminal; into a log file it writes a line at most every
`LOG_INTERVAL` seconds and one when the pass ends, so logs stay short.
"""

import sys
import time

# Seconds between progress lines when the output is not a terminal.
LOG_INTERVAL = 30.0
# Seconds between redraws on a terminal.
_REDRAW_INTERVAL = 0.2
_BAR_WIDTH = 24

_verbose = 2


def set_verbose(level):
  """Sets what this module prints (see the module docstring).

  Args:
    level: 0, 1, 2 or more (`--verbose`).
  """
  global _verbose
  _verbose = int(level)


def verbose():
  """The level `set_verbose` set (2 unless changed)."""
  return _verbose


def banner(text):
  """Prints `=== <text> ===` to stdout when a phase starts (level >= 1).

  Args:
    text: the phase and what it works on, e.g. "SRDC: 20 epochs".
  """
  if _verbose >= 1:
    print(f"=== {text} ===", flush=True)


def line(text):
  """Prints one line to stdout (level >= 1): an epoch's numbers."""
  if _verbose >= 1:
    print(text, flush=True)


def format_progress(label, done, total, seconds, note=""):
  """`label [#####.....] done/total  12s  note` (no bar without a total).

  Args:
    label: what is counted.
    done: items finished.
    total: items in all, or None when unknown.
    seconds: time since the pass started.
    note: extra text (e.g. "3 bad").

  Returns:
    The progress line, without a newline.
  """
  if total:
    filled = min(_BAR_WIDTH, int(_BAR_WIDTH * done / total))
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    text = f"{label} [{bar}] {done}/{total}"
  else:
    text = f"{label} {done}"
  text += f"  {seconds:.0f}s"
  return f"{text}  {note}" if note else text


class Progress:
  """Progress of one pass, on stderr; silent below level 2.

  Args:
    label: what is counted, e.g. "checking amazon".
    total: items in all, or None.
    stream: where it writes (default: stderr).
    enabled: None: at level >= 2; True or False forces it.
    transient: for a pass that repeats (every epoch): its line is erased
      on a terminal when it ends, and into a log it writes a final line
      only when the pass was long enough to write one before.
  """

  def __init__(self, label, total=None, stream=None, enabled=None,
               transient=False):
    self.label = label
    self.total = total
    self.stream = stream or sys.stderr
    self.enabled = _verbose >= 2 if enabled is None else bool(enabled)
    self.done = 0
    self.note = ""
    self._start = time.monotonic()
    self._shown = self._start
    self._terminal = bool(getattr(self.stream, "isatty", lambda: False)())
    self._transient = transient
    self._written = False

  def update(self, count=1, note=None):
    """Adds `count` finished items (and sets the note, if given)."""
    self.done += count
    if note is not None:
      self.note = note
    if not self.enabled:
      return
    now = time.monotonic()
    interval = _REDRAW_INTERVAL if self._terminal else LOG_INTERVAL
    if now - self._shown >= interval:
      self._shown = now
      self._write(end="\r" if self._terminal else "\n")

  def close(self, note=None):
    """Writes the final line."""
    if note is not None:
      self.note = note
    if not self.enabled:
      return
    if not self._transient:
      self._write(end="\n")
    elif self._terminal:
      self.stream.write("\r\033[K")  # Erase the line.
      self.stream.flush()
    elif self._written:
      self._write(end="\n")

  def _write(self, end):
    self._written = True
    text = format_progress(self.label, self.done, self.total,
                           time.monotonic() - self._start, self.note)
    self.stream.write(("\r" if self._terminal else "") + text + end)
    self.stream.flush()

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()
