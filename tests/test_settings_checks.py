"""settings_checks: valid settings that work against each other (cautions),
and settings refused because they would change nothing."""

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


_MOBILENET = {"backbone": "mobilenet_v2", "image_size": 32}
_BATCH_NORM = settings_checks.check_batch_norm_mode
_FROZEN_EPOCHS = settings_checks.check_backbone_frozen_epochs


@pytest.mark.parametrize("check, changes", [
    (_BATCH_NORM, {"backbone_batch_norm": "train"}),
    (_BATCH_NORM, {"backbone_batch_norm": "frozen", **_MOBILENET}),
    # The benchmarks freeze the backbone and train its top: a valid pair.
    (_BATCH_NORM, {"backbone_batch_norm": "frozen", "freeze_backbone": True,
                   "trainable_layers": 12, **_MOBILENET}),
    (_BATCH_NORM, {"backbone_batch_norm": "frozen", "freeze_backbone": True,
                   "trainable_from": "Conv_1", **_MOBILENET}),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": 0}),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": 2, "epochs": 3}),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": 10, "freeze_backbone": True,
                      "trainable_layers": 12, **_MOBILENET}),
])
def test_backbone_training_settings_accepted(check, changes):
  check(_settings(**changes))


@pytest.mark.parametrize("check, changes, message", [
    (_BATCH_NORM, {"backbone_batch_norm": "frozen"},
     "--backbone_batch_norm=frozen has no effect with --backbone=lenet"),
    (_BATCH_NORM, {"backbone_batch_norm": "frozen", "freeze_backbone": True,
                   **_MOBILENET},
     "--backbone_batch_norm=frozen has no effect with --freeze_backbone"),
    (_BATCH_NORM, {"backbone_batch_norm": "inference", **_MOBILENET},
     "--backbone_batch_norm must be one of ('train', 'frozen'), got "
     "'inference'"),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": -1, "epochs": 3},
     "--backbone_frozen_epochs must be in [0, --epochs=3), got -1"),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": 3, "epochs": 3},
     "--backbone_frozen_epochs must be in [0, --epochs=3), got 3"),
    (_FROZEN_EPOCHS, {"backbone_frozen_epochs": 1, "freeze_backbone": True,
                      **_MOBILENET},
     "--backbone_frozen_epochs=1 has no effect with --freeze_backbone"),
])
def test_backbone_training_settings_refused(check, changes, message):
  with pytest.raises(ValueError) as error:
    check(_settings(**changes))
  assert message in str(error.value)
