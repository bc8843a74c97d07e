"""What the benchmark scripts share: the machine they ran on, Markdown
tables, medians.

The machine is shared, so every table is printed with the 1-minute load
average at start and end: figures taken at a load above the number of
cores are slower than the machine can do.
"""

import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)  # `python benchmarks/<script>.py` from anywhere.


def cpu_model():
  try:
    with open("/proc/cpuinfo") as lines:
      for line in lines:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


# The vector extensions that decide float32 and bfloat16 speed on a CPU.
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16",
                "amx_tile")


def cpu_vector_flags():
  """Which of `VECTOR_FLAGS` the CPU has, as lscpu's flags name them."""
  from srdc_tf.models import precision  # pylint: disable=g-import-not-at-top
  have = precision.cpu_flags()
  return [flag for flag in VECTOR_FLAGS if flag in have]


def resident_bytes():
  """This process' resident set size now, in bytes (Linux)."""
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def load_average():
  """The 1-minute load average."""
  return os.getloadavg()[0]


class Report:
  """Collects a benchmark's tables and prints them with the machine.

  Args:
    title: what was measured.
    command: the command line that reproduces it.
  """

  def __init__(self, title, command=None):
    self.title = title
    self.command = command or " ".join(
        [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    self.load_start = load_average()
    self.started = time.time()
    self.tables = []

  def table(self, columns, rows, caption=None):
    """Adds a table; `rows` are sequences of cells, in `columns` order."""
    self.tables.append((caption, columns, [list(r) for r in rows]))

  def machine(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import keras  # pylint: disable=g-import-not-at-top
    try:
      usable = len(os.sched_getaffinity(0))
    except AttributeError:
      usable = os.cpu_count()
    vector = ", ".join(cpu_vector_flags()) or "none of " + "/".join(
        VECTOR_FLAGS)
    return (f"{usable} cores ({os.cpu_count()} online), {cpu_model()} "
            f"({vector}); "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"Python {platform.python_version()}; 1-min load average "
            f"{self.load_start:.2f} at start, {load_average():.2f} at end; "
            f"{time.time() - self.started:.0f} s")

  def render(self):
    out = [f"### {self.title}", "", f"`{self.command}`", "",
           f"Machine: {self.machine()}", ""]
    for caption, columns, rows in self.tables:
      if caption:
        out += [caption, ""]
      out.append("| " + " | ".join(columns) + " |")
      out.append("|" + "---|" * len(columns))
      for row in rows:
        out.append("| " + " | ".join(_cell(c) for c in row) + " |")
      out.append("")
    return "\n".join(out)

  def print(self):
    print(self.render(), flush=True)


def _cell(value):
  if isinstance(value, float):
    if value == 0 or abs(value) >= 100:
      return f"{value:.0f}"
    if abs(value) >= 10:
      return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"
  return str(value)


def median(values):
  return statistics.median(values)


def train_step_seconds(model, batch, warmup_steps, steps):
  """`(first step, median step)` seconds of `model.fit` on `batch` repeated.

  The real `train_step` runs through `fit`; a callback stamps the end of
  every step (after reading the loss, so the step has finished).
  """
  durations = train_step_durations(model, batch, warmup_steps + steps)
  return durations[0], median(durations[warmup_steps:])


def train_step_durations(model, batch, steps):
  """Seconds of each of `steps` steps of `model.fit` on `batch` repeated."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  ends = []

  class StepTimes(keras.callbacks.Callback):

    def on_train_begin(self, logs=None):
      ends.append(time.perf_counter())

    def on_train_batch_end(self, batch, logs=None):
      float(logs["loss"])
      ends.append(time.perf_counter())

  data = tf.data.Dataset.from_tensors(batch).repeat()
  model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[StepTimes()],
            verbose=0)
  return [b - a for a, b in zip(ends, ends[1:])]


def call_seconds(function, warmup, repeats):
  """Median seconds of `function()` after `warmup` untimed calls."""
  times = []
  for _ in range(warmup + repeats):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return median(times[warmup:])


def synthetic_train_batch(image_shape, batch, num_classes, seed=0):
  """A training dict of random pixels in [0, 255] (or features)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)

  def images():
    return rng.integers(0, 256, (batch,) + tuple(image_shape)).astype(
        np.float32)

  return {"source_image": images(),
          "source_label": rng.integers(0, num_classes, batch).astype(np.int32),
          "source_index": np.arange(batch, dtype=np.int32),
          "target_image": images(),
          "target_index": np.arange(batch, dtype=np.int32)}
