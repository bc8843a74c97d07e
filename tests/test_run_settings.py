"""RunSettings' defaults that depend on other settings: neighbour
refinement is on for a run long enough to cluster first, recorded as the
value the run trains with, and named in the method only away from it."""

import pytest

from srdc_tf import run_settings
from srdc_tf import settings_checks


def _settings(**changes):
  return run_settings.RunSettings(source="synthetic:source",
                                  target="synthetic:target",
                                  model_dir="unused", **changes)


@pytest.mark.parametrize("epochs, warmup_epochs, refined", [
    (200, 1, 5), (50, 1, 5), (40, 1, 5),
    (16, 1, 5),   # 10 epochs of clustering before the 5 refined.
    (15, 1, 0), (3, 1, 0), (1, 1, 0),
    (20, 5, 5), (20, 6, 0),  # The warm-up does not cluster.
])
def test_default_refinement_by_run_length(epochs, warmup_epochs, refined):
  assert run_settings.default_refinement_epochs(epochs, warmup_epochs) == (
      refined)
  settings = _settings(epochs=epochs, warmup_epochs=warmup_epochs)
  assert settings.refinement_epochs is None
  assert settings.refined_epochs == refined
  assert settings.resolved().refinement_epochs == refined
  # The default never refuses a run, however short.
  settings_checks.check(settings)


@pytest.mark.parametrize("changes, method", [
    ({"epochs": 50}, "srdc"),
    ({"epochs": 50, "refinement_epochs": 5}, "srdc"),
    ({"epochs": 50, "refinement_epochs": 0}, "srdc+refinement_epochs=0"),
    ({"epochs": 50, "refinement_epochs": 3}, "srdc+refinement_epochs=3"),
    ({"epochs": 3}, "srdc"),
    ({"epochs": 3, "refinement_epochs": 0}, "srdc"),
    ({"epochs": 3, "refinement_epochs": 1}, "srdc+refinement_epochs=1"),
])
def test_method_names_refinement_away_from_its_default(changes, method):
  settings = _settings(**changes)
  assert settings.method == method
  assert settings.resolved().method == method


@pytest.mark.parametrize("refinement_epochs", [0, 5])
def test_explicit_refinement_is_kept(refinement_epochs):
  settings = _settings(epochs=50, refinement_epochs=refinement_epochs)
  assert settings.refined_epochs == refinement_epochs
  assert settings.resolved() == settings


@pytest.mark.parametrize("refinement_epochs", [None, 0, 5])
def test_a_source_only_model_never_refines(refinement_epochs):
  from srdc_tf import training  # pylint: disable=g-import-not-at-top
  # An explicit --source_only --refinement_epochs=5 records 0 as well.
  source_only = _settings(epochs=50, source_only=True,
                          refinement_epochs=refinement_epochs)
  assert source_only.refined_epochs == 0
  assert source_only.resolved().refinement_epochs == 0
  # A baseline records the same whatever its SRDC run refines.
  run = _settings(epochs=50, refinement_epochs=refinement_epochs)
  for parent in (run, run.resolved()):
    baseline = training.baseline_settings(parent)
    assert baseline.source_only and baseline.refinement_epochs == 0
    assert baseline.method == "source_only"
