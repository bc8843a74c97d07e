"""`--refinement_epochs` end to end: a tiny run's last epoch trains on the
neighbour vote, says so in metrics.csv and in the method's name, and is
the epoch kept."""

import numpy as np

import srdc_tf
from test_api import TINY


def test_a_run_refines_in_its_last_epochs_only(tmp_path):
  settings = dict(TINY, epochs=3, refinement_epochs=1)
  fitted = srdc_tf.fit(source="synthetic:source", target="synthetic:target",
                       model_dir=tmp_path / "run", **settings)
  changed = np.asarray(fitted.history["refinement_changed"], float)
  assert np.isnan(changed[:2]).all()
  assert 0.0 <= changed[2] <= 1.0
  assert "refinement_epochs=1" in fitted.metrics["method"]
  # The refined model is kept, whichever epoch scores best.
  assert fitted.metrics["selected_epoch"] == 2
  assert np.isfinite(fitted.metrics["target_accuracy"])
