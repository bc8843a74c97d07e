"""The Python API: `fit` trains as `srdc-train` does, `load` gives a model
for prediction.

  import srdc_tf
  model, metrics = srdc_tf.fit(source="synthetic:source",
                               target="synthetic:target", epochs=5)
  print(metrics["target_accuracy"])
  srdc_tf.load("saved_models/default/1").predict(images)["class_name"]

The settings are `run_settings.RunSettings`, whose fields are the flags of
`srdc-train` (`tests/test_api.py` keeps the two equal); TensorFlow is
imported on the first call, so `import srdc_tf` stays cheap.
"""

import dataclasses
import difflib
import os
import tempfile


@dataclasses.dataclass(frozen=True)
class FitResult:
  """What `fit` returns; unpacks as `model, metrics = fit(...)`.

  Attributes:
    model: a `predictor.Predictor` on the run directory (takes images).
    metrics: the run's result (`target_accuracy`, `per_class_accuracy`,
      `scores`, `selected_epoch`, `export`, ...; see `runner.run`).
    baseline_metrics: the source-only baseline's result, or None.
    history: a pandas DataFrame of `metrics.csv`, one row per epoch.
    model_dir: the run directory.
  """
  model: object
  metrics: dict
  baseline_metrics: dict
  history: object
  model_dir: str

  def __iter__(self):
    return iter((self.model, self.metrics))


def settings_from(source, target, model_dir=None, **settings):
  """A `run_settings.RunSettings` from keyword arguments, as `fit` builds it.

  Args:
    source: the labelled source's data spec (as `--source`).
    target: the target's data spec (as `--target`).
    model_dir: the run directory; None: a new temporary folder.
    **settings: any other `RunSettings` field (a flag of `srdc-train`).

  Returns:
    The `RunSettings`.

  Raises:
    ValueError: a keyword is not a setting, naming it.
  """
  from srdc_tf import run_settings  # pylint: disable=g-import-not-at-top

  names = [field.name
           for field in dataclasses.fields(run_settings.RunSettings)]
  unknown = sorted(set(settings) - set(names))
  if unknown:
    hints = [f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
             for name in unknown
             for close in [difflib.get_close_matches(name, names, 1)]]
    raise ValueError(
        f"unknown setting(s) {', '.join(hints)}: the settings are the "
        "flags of srdc-train (see `srdc-train --help`), i.e. the fields of "
        "srdc_tf.run_settings.RunSettings")
  if model_dir is None:
    model_dir = tempfile.mkdtemp(prefix="srdc-run-")
  return run_settings.RunSettings(source=source, target=target,
                                  model_dir=os.fspath(model_dir), **settings)


def fit(source, target, model_dir=None, with_baseline=False,
        overwrite=False, strategy="default", num_cpu_devices=0,
        force_precision=False, peer_timeout=600, **settings):
  """Trains SRDC (or, with `source_only=True`, the baseline) on a source
  and a target, exactly as `srdc-train` with the same flags does.

  Args:
    source: the labelled source's data spec (as `--source`).
    target: the target's data spec (as `--target`).
    model_dir: the run directory; None: a new temporary folder. A
      finished run of the same settings there is reported, not retrained.
    with_baseline: also train the source-only baseline (as
      `--with_baseline`).
    overwrite: move a run of other settings in `model_dir` aside (as
      `--overwrite`).
    strategy: `default`, `mirrored` or `multi_worker` (as `--strategy`).
    num_cpu_devices: as `--num_cpu_devices`.
    force_precision: as `--force_precision`.
    peer_timeout: as `--peer_timeout` (seconds).
    **settings: any other flag of `srdc-train` by its name, e.g.
      `epochs=20, backbone="lenet", export_dir="saved_models/x"`.

  Returns:
    A `FitResult`; `model, metrics = fit(...)` unpacks it.

  Raises:
    ValueError: an unknown setting, a bad value or input (naming it).
    srdc_tf.callbacks.divergence.TrainingDivergedError: the loss became
      NaN or infinite.
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  from srdc_tf import predictor  # pylint: disable=g-import-not-at-top
  from srdc_tf import training  # pylint: disable=g-import-not-at-top

  run_settings = settings_from(source, target, model_dir, **settings)
  results, _ = training.train(run_settings, with_baseline, overwrite,
                              strategy, num_cpu_devices, force_precision,
                              peer_timeout)
  method = "source_only" if run_settings.source_only else "srdc"
  history_file = os.path.join(run_settings.model_dir, "metrics.csv")
  return FitResult(
      model=predictor.load(run_settings.model_dir),
      metrics=results[method],
      baseline_metrics=(results.get("source_only")
                        if method != "source_only" else None),
      history=(pd.read_csv(history_file) if os.path.isfile(history_file)
               else None),
      model_dir=run_settings.model_dir)


def load(path):
  """A trained model for prediction (see `predictor.load`).

  Args:
    path: an export version folder, an export base (the newest version),
      or a training run directory.

  Returns:
    A `predictor.Predictor`: `.predict(images)` gives `probabilities`,
    `class_id` and `class_name`; `.predict_files(paths)` streams files.
  """
  from srdc_tf import predictor  # pylint: disable=g-import-not-at-top
  return predictor.load(path)
