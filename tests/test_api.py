"""The Python API and the flags share one settings object, `RunSettings`:
every field is a flag of srdc-train with the same default, every flag that
configures a run is a field; `fit` trains as the binary does."""

import dataclasses
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

import srdc_tf
from srdc_tf import run_settings
from srdc_tf import train  # noqa: F401  Defines the flags of srdc-train.
import serving_testlib

# Flags of srdc-train that are not settings of one run: they say how the
# command runs, and are `srdc_tf.fit` arguments of the same name.
NOT_SETTINGS = {
    "with_baseline",    # A second run (the baseline), not a setting of one.
    "overwrite",        # What to do with an earlier run in model_dir.
    "strategy",         # Where the run executes (distribute).
    "num_cpu_devices",  # Likewise.
    "force_precision",  # Whether a slow --precision may run: not a result.
    "peer_timeout",     # How long to wait for multi-worker peers.
}
TINY = dict(synthetic_examples_per_class=8, image_size=16, bottleneck_dim=16,
            batch_size=8, backbone_lr_multiplier=1.0, kmeans_iterations=2,
            epochs=2, verbose=0)


def _train_flags():
  """The flags srdc-train defines (absl's and other binaries' left out)."""
  return {flag.name: flag for module, module_flags in
          flags.FLAGS.flags_by_module_dict().items()
          if module in ("srdc_tf.train", "srdc_tf.data_flags")
          for flag in module_flags}


def _fields():
  return {field.name: field for field in dataclasses.fields(
      run_settings.RunSettings)}


def test_every_setting_is_a_flag_and_every_run_flag_a_setting():
  flag_names, fields = set(_train_flags()), set(_fields())
  assert fields - flag_names == set(), "settings without a flag"
  assert flag_names - fields - NOT_SETTINGS == set(), (
      "flags of srdc-train missing from RunSettings")
  assert NOT_SETTINGS <= flag_names - fields, "stale NOT_SETTINGS entries"
  fit_arguments = set(srdc_tf.api.fit.__code__.co_varnames)
  assert NOT_SETTINGS <= fit_arguments


def test_flags_and_settings_have_the_same_defaults():
  flag_values = _train_flags()
  for name, field in _fields().items():
    if field.default is dataclasses.MISSING:  # Required: source, ...
      assert flag_values[name].default is None, name
    else:
      assert flag_values[name].default == field.default, name


@pytest.mark.parametrize("settings, message", [
    ({"epoch": 3}, "'epoch' \\(did you mean 'epochs'\\?\\)"),
    ({"learning_rate": 0.1, "zzz": 1}, "'learning_rate'.*'zzz'"),
])
def test_fit_rejects_an_unknown_setting_by_name(settings, message):
  with pytest.raises(ValueError, match=message):
    srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                **settings)


def test_fit_rejects_a_bad_value_naming_its_flag(tmp_path):
  with pytest.raises(ValueError, match="--epochs must be > 0, got 0"):
    srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                model_dir=tmp_path / "run", epochs=0)


def test_import_is_cheap_and_versioned():
  result = subprocess.run(
      [sys.executable, "-c", "import sys, srdc_tf; "
       "print(srdc_tf.__version__, 'tensorflow' in sys.modules)"],
      capture_output=True, text=True, check=True, cwd=serving_testlib.REPO)
  version, tensorflow = result.stdout.split()
  assert version == srdc_tf.__version__ and tensorflow == "False"


@pytest.mark.e2e
def test_fit_trains_and_load_predicts(tmp_path):
  model, metrics = srdc_tf.fit(
      source="synthetic:source", target="synthetic:target",
      model_dir=tmp_path / "run", export_dir=str(tmp_path / "export"),
      with_baseline=True, **TINY)
  fitted = srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                       model_dir=tmp_path / "run", with_baseline=True,
                       export_dir=str(tmp_path / "export"), **TINY)
  assert fitted.metrics["reused"] is True  # Finished: not trained again.
  assert 0.0 <= metrics["target_accuracy"] <= 1.0
  assert fitted.baseline_metrics["method"] == "source_only"
  assert list(fitted.history["epoch"]) == [0, 1]
  images = serving_testlib.pixel_images(4, (16, 16, 3))
  for loaded in (model, srdc_tf.load(metrics["export"]),
                 srdc_tf.load(str(tmp_path / "run"))):
    predicted = loaded.predict(images)
    assert predicted["probabilities"].shape == (4, 6)
    np.testing.assert_allclose(predicted["probabilities"],
                               model.predict(images)["probabilities"],
                               atol=1e-5)
