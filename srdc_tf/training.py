"""A whole training command: the run and, if asked, its source-only
baseline, each trained once. `srdc-train` and `srdc_tf.fit` both call
`train`, so neither can do what the other cannot.

The phases, each announced when it starts (`console.banner`): the data
check (and the feature cache of a frozen backbone), the source-only
baseline, SRDC, the export. A finished run with the same settings is
reported, not trained again; a finished baseline is reused.
"""

import contextlib
import os

from absl import logging

from srdc_tf import console
from srdc_tf import distribute
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_files
from srdc_tf import run_lock
from srdc_tf import runner
from srdc_tf import settings_checks
from srdc_tf.models import backbones
from srdc_tf.models import cut
from srdc_tf.models import precision

BASELINE_DIR = "source_only"
SUMMARY_FILE = "summary.json"


class InputError(ValueError):
  """A setting, a data spec or a file that stops the run before training;
  the message says what was wrong."""


def baseline_settings(settings):
  """The settings of the source-only baseline of a `--with_baseline` run:
  the run's own, in `<model_dir>/source_only`, without an export, resolved
  as it is recorded (so without neighbour refinement)."""
  return settings.replace(
      source_only=True,
      model_dir=os.path.join(settings.model_dir, BASELINE_DIR),
      export_dir="").resolved()


def train(settings, with_baseline=False, overwrite=False,
          strategy="default", num_cpu_devices=0, force_precision=False,
          peer_timeout=distribute.DEFAULT_PEER_TIMEOUT):
  """Trains a run (and its baseline) and writes `summary.json`.

  Args:
    settings: a `run_settings.RunSettings`.
    with_baseline: also train the source-only baseline the same way, into
      `<model_dir>/source_only`, and compare with it.
    overwrite: a run of other settings in `model_dir` is moved aside
      instead of refused.
    strategy: the distribution strategy's name (`distribute`).
    num_cpu_devices: logical CPU devices for a mirrored strategy.
    force_precision: run `mixed_bfloat16` also where it is slower than
      float32 (a CPU without native bfloat16), with a warning.
    peer_timeout: with a multi-worker strategy, seconds to wait for every
      worker to join before stopping with the peers that did not.

  Returns:
    `(results, strategy)`: a dict from method (`source_only`, `srdc`) to
    the result of `runner.run` (with `reused` for a run finished earlier),
    and the `tf.distribute.Strategy` used.

  Raises:
    InputError: a bad setting or input, or another command holding
      `settings.model_dir` (`run_lock`), before any training.
    divergence.TrainingDivergedError: the loss became NaN or infinite.
  """
  # The run directory's lock (taken once the strategy says who writes)
  # is held until the command ends, however it ends.
  with contextlib.ExitStack() as locks:
    return _train(locks, settings, with_baseline, overwrite, strategy,
                  num_cpu_devices, force_precision, peer_timeout)


def _train(locks, settings, with_baseline, overwrite, strategy,
           num_cpu_devices, force_precision, peer_timeout):
  """`train`, with the run directory's lock entered into `locks`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  console.set_verbose(settings.verbose)
  try:
    settings_checks.check(settings, with_baseline)
    # The run records, and resumes by, the values it trains with.
    settings = settings.resolved()
    for caution in settings_checks.cautions(settings, with_baseline):
      logging.warning("%s", caution)
    slow = precision.slow_precision_reason(
        settings.precision, precision.cpu_flags(),
        has_gpu=bool(tf.config.list_physical_devices("GPU")))
    if slow and not force_precision:
      raise ValueError(slow)
    if slow:
      logging.warning("--force_precision: %s", slow)
    if settings.deterministic:
      tf.config.experimental.enable_op_determinism()
    if peer_timeout <= 0:
      raise ValueError(f"--peer_timeout must be > 0, got {peer_timeout}")
    strategy = distribute.create_strategy(strategy, num_cpu_devices,
                                          peer_timeout)
    # A run of other settings in model_dir, or in its baseline's folder, is
    # refused (or moved aside) before the data is loaded: a finished
    # baseline is never trained over in place.
    baseline = (baseline_settings(settings)
                if with_baseline and not settings.source_only else None)
    chief = distribute.is_chief(strategy)
    if chief:  # Before anything in it is read or moved.
      locks.enter_context(run_lock.hold(settings.model_dir))
    for claimed in [settings] + ([baseline] if baseline else []):
      moved = run_directory.claim(claimed, overwrite)
      if moved:
        logging.warning("--overwrite: moved the earlier run in %s to %s",
                        claimed.model_dir, moved)
        if chief and claimed is settings:  # The lock went with the folder.
          locks.enter_context(run_lock.hold(settings.model_dir))
    if settings.trains_top_only:
      # A cut that no single tensor crosses fails now (with the weights
      # file's check), not after the data is loaded and cached.
      cut.split_backbone(
          settings.backbone, settings.transform.shape,
          weights=None if settings.weights == "imagenet" else settings.weights,
          trainable_layers=settings.trainable_layers,
          trainable_from=settings.trainable_from, fused_batch_norm=False)
    elif settings.weights not in (None, "", "none", "imagenet"):
      # A weights file of another architecture fails now, not after the
      # data is loaded and checked.
      backbones.build_backbone(settings.backbone, settings.transform.shape,
                               weights=settings.weights,
                               fused_batch_norm=False)
    finished = run_directory.finished_result(settings)
    data = None
    if not finished:
      console.banner(f"Data check: source {settings.source}, target "
                     f"{settings.target}")
      data = run_data.load_data(settings)
  except (ValueError, OSError) as error:
    # Bad inputs stop here, before any training, with what was wrong.
    raise InputError(str(error)) from error
  results = {}
  baseline_dir = None  # The finished baseline the SRDC run compares with.
  if baseline is not None:
    baseline_dir = baseline.model_dir
    # A restarted command does not train its finished baseline again.
    results["source_only"] = run_directory.finished_result(baseline)
    if results["source_only"] is not None:
      results["source_only"]["reused"] = True
      logging.info("The source-only baseline in %s finished earlier with "
                   "these settings; using its result.", baseline.model_dir)
    elif finished:  # Nothing is trained for a finished run.
      results.pop("source_only")
    else:
      results["source_only"] = runner.run(baseline, data, strategy)
  if finished:
    # The same command again: report the finished run, train nothing.
    logging.info("%s holds this run, finished earlier; reporting it.",
                 settings.model_dir)
    finished["reused"] = True
  name = "source_only" if settings.source_only else "srdc"
  results[name] = finished or runner.run(settings, data, strategy,
                                         baseline_dir=baseline_dir)
  if distribute.is_chief(strategy):
    run_files.write_json(os.path.join(settings.model_dir, SUMMARY_FILE),
                      results)
  return results, strategy
