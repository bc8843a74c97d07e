"""settings_checks.cautions: valid settings that work against each other."""

import pytest

from srdc_tf import run_settings
from srdc_tf import settings_checks


def _settings(**changes):
  return run_settings.RunSettings(source="synthetic:source",
                                  target="synthetic:target",
                                  model_dir="unused", **changes)


@pytest.mark.parametrize("changes, with_baseline, cautioned", [
    ({"source_label_smoothing": 0.1}, True, True),
    ({"source_label_smoothing": 0.1, "source_only": True}, False, True),
    # Only the source-only model's entropy rises; SRDC's clustering lowers
    # its own.
    ({"source_label_smoothing": 0.1}, False, False),
    ({"source_label_smoothing": 0.1, "select_by": "last"}, True, False),
    ({"source_label_smoothing": 0.1, "select_by": "balance"}, True, False),
    ({}, True, False),
])
def test_label_smoothing_with_entropy_selection_is_cautioned(
    changes, with_baseline, cautioned):
  messages = settings_checks.cautions(_settings(**changes), with_baseline)
  assert bool(messages) == cautioned
  if cautioned:
    assert messages == [
        "--source_label_smoothing=0.1 with --select_by=entropy: smoothing "
        "raises the source-only model's target entropy as it trains, so "
        "entropy selection keeps one of its first epochs; --select_by=last "
        "keeps its last"]
