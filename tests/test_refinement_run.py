"""`--refinement_epochs` end to end: a tiny run's last epochs train on the
neighbour vote, say so in metrics.csv and in the method's name, and the
last is the epoch kept; unset, a run long enough refines its last 5."""

import json

import numpy as np
import pytest

import srdc_tf
from test_api import TINY


@pytest.mark.parametrize("changes, refined, method", [
    ({"epochs": 3, "refinement_epochs": 1}, 1, "srdc+refinement_epochs=1"),
    # The default: 10 epochs of clustering after the warm-up, then 5.
    ({"epochs": 16}, 5, "srdc"),
])
def test_a_run_refines_in_its_last_epochs_only(changes, refined, method,
                                               tmp_path):
  settings = dict(TINY, **changes)
  fitted = srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                       model_dir=tmp_path / "run", **settings)
  changed = np.asarray(fitted.history["refinement_changed"], float)
  epochs = changes["epochs"]
  assert np.isnan(changed[:epochs - refined]).all()
  # Taken once, at the first refinement epoch, and logged there.
  assert 0.0 <= changed[epochs - refined] <= 1.0
  assert fitted.metrics["method"] == method
  record = json.loads((tmp_path / "run" / "run_info.json").read_text())
  assert record["settings"]["refinement_epochs"] == refined
  # The refined model is kept, whichever epoch scores best.
  assert fitted.metrics["selected_epoch"] == epochs - 1
  assert np.isfinite(fitted.metrics["target_accuracy"])


def test_a_source_only_run_records_no_refinement_whatever_the_flag(tmp_path):
  settings = dict(TINY, epochs=3, refinement_epochs=1, source_only=True)
  fitted = srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                       model_dir=tmp_path / "run", **settings)
  assert np.isnan(np.asarray(
      fitted.history.get("refinement_changed", [np.nan]), float)).all()
  assert fitted.metrics["method"] == "source_only"
  record = json.loads((tmp_path / "run" / "run_info.json").read_text())
  assert record["settings"]["refinement_epochs"] == 0
