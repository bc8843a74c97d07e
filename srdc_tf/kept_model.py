"""Which model a finished run hands over: the epoch its label-free
selection kept, or, after the collapse guard's fallback, the source-only
baseline; and the summary's record of that choice."""

import dataclasses

from srdc_tf import collapse_guard
from srdc_tf import run_data
from srdc_tf import scores as scores_lib
from srdc_tf.models import cut


@dataclasses.dataclass(frozen=True)
class KeptModel:
  """What the run hands over.

  Attributes:
    accuracy: its target accuracy.
    scores: its label-free scores.
    predictions: its `[N]` target predictions.
  """
  accuracy: float
  scores: dict
  predictions: object


def keep(settings, data, model, parts, baseline, last_accuracy):
  """Restores the selected epoch's weights into `model`, runs the collapse
  guard and, after a fallback, loads the baseline's weights instead.

  Args:
    settings: the run's `RunSettings`.
    data: its `RunData`.
    model: the trained model; its weights become those kept.
    parts: the run's `callbacks.training_callbacks.TrainingCallbacks`.
    baseline: the source-only `collapse_guard.Baseline`, or None.
    last_accuracy: the last epoch's target accuracy.

  Returns:
    `(selected, outcome, kept)`: the selector's `Selected`, the guard's
    `Outcome` and a `KeptModel`.
  """
  selected = parts.selector.finish(model, settings.epochs - 1)
  accuracy = selected.accuracy if selected.restored else last_accuracy
  outcome = collapse_guard.guard(
      settings.method, selected.scores, selected.epoch, parts.source_shares,
      settings.select_by, settings.on_collapse, baseline,
      epoch_scores=parts.label_scores.epoch_scores)
  if outcome.exported != collapse_guard.SOURCE_ONLY:
    return selected, outcome, KeptModel(accuracy, selected.scores,
                                        selected.predictions)
  _load_baseline_weights(model, baseline, data)
  scores = parts.label_scores.compute(model)
  # The baseline has no pseudo-labels of its own to agree with.
  scores.pop(scores_lib.KMEANS_AGREEMENT, None)
  return selected, outcome, KeptModel(baseline.target_accuracy, scores,
                                      parts.label_scores.last_predictions)


def selection_record(settings, parts, selected, kept_scores, outcome):
  """The summary's entries on the epoch kept, every epoch's label-free
  scores, the collapse guard's findings and which model was exported.

  Args:
    settings: the run's `RunSettings`.
    parts: its `TrainingCallbacks`.
    selected: the selector's `Selected`.
    kept_scores: the label-free scores of the model handed over.
    outcome: the collapse guard's `Outcome`.

  Returns:
    A dict to merge into the run's summary.
  """
  exported_baseline = outcome.exported == collapse_guard.SOURCE_ONLY
  record = {
      "select_by": selected.select_by, "selected_epoch": selected.epoch,
      "selection_score": selected.score,
      "selection_max_share": parts.selector.max_share,
      "herding_epoch": parts.selector.herding_epoch,
      "scores": kept_scores,
      "epoch_scores": [{"epoch": epoch, **values} for epoch, values in
                       sorted(parts.label_scores.epoch_scores.items())],
      "warnings": [finding.as_dict() for finding in outcome.findings],
      "exported": (collapse_guard.SOURCE_ONLY if exported_baseline
                   else settings.method)}
  if exported_baseline:
    record["adapted_target_accuracy"] = selected.accuracy
  return record


def _load_baseline_weights(model, baseline, data):
  """The source-only baseline's weights into `model` (`--on_collapse`)."""
  # The baseline saved what `model_to_keep` gives: for a top trained on
  # cached activations, the whole network, whose top layers are `model`'s.
  saved_like = run_data.model_to_keep(model, data)
  collapse_guard.load_baseline_weights(saved_like, baseline)
  if saved_like is not model:
    cut.copy_head_state(saved_like, model)
