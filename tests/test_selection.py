"""Tests of srdc_tf.selection (pure) and of the callback that keeps the
selected epoch's weights."""

import math

import keras
import numpy as np
import pytest

from srdc_tf import selection
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import model_selection

NAN = float("nan")
# Epoch -> scores: entropy is lowest at 2, balance highest at 1, SND highest
# at 0 and 3 (a tie: the first wins), k-means agreement missing at 0.
EPOCHS = {
    0: {"entropy": 0.9, "balance": 0.5, "snd": 3.0},
    1: {"entropy": 0.6, "balance": 0.9, "snd": 2.0, "kmeans_agreement": 0.4},
    2: {"entropy": 0.2, "balance": 0.7, "snd": 2.5, "kmeans_agreement": NAN},
    3: {"entropy": 0.3, "balance": 0.8, "snd": 3.0, "kmeans_agreement": 0.7},
}


@pytest.mark.parametrize("select_by, epoch, value", [
    ("last", 3, None),
    ("entropy", 2, 0.2),  # Lower is better.
    ("balance", 1, 0.9),
    ("snd", 0, 3.0),  # The first of a tie.
    ("kmeans_agreement", 3, 0.7),  # Missing and NaN values are skipped.
])
def test_select_epoch(select_by, epoch, value):
  assert selection.select_epoch(EPOCHS, select_by) == (epoch, value)
  # Pairs in any order give the same.
  pairs = list(reversed(list(EPOCHS.items())))
  assert selection.select_epoch(pairs, select_by) == (epoch, value)


@pytest.mark.parametrize("candidate, best, name, better", [
    (0.5, None, "snd", True),
    (0.5, NAN, "snd", True),
    (NAN, 0.5, "snd", False),
    (None, 0.5, "snd", False),
    (0.6, 0.5, "snd", True),
    (0.5, 0.5, "snd", False),  # Strictly.
    (0.4, 0.5, "entropy", True),
    (0.6, 0.5, "entropy", False),
])
def test_is_better(candidate, best, name, better):
  assert selection.is_better(candidate, best, name) is better


def test_every_selectable_score_has_a_direction():
  assert selection.SELECT_BY[0] == "last"
  assert set(selection.SELECT_BY[1:]) == set(selection.DIRECTIONS)
  assert selection.DEFAULT_SELECT_BY in selection.SELECT_BY
  assert selection.comparison_score("last") == selection.COMPARISON_SCORE
  assert selection.comparison_score("balance") == "balance"
  # Adaptation lowers entropy whether it helps or not: not a comparison.
  assert selection.comparison_score("entropy") == selection.COMPARISON_SCORE


@pytest.mark.parametrize("call, message", [
    (lambda: selection.select_epoch({}, "snd"), "at least one epoch, got none"),
    (lambda: selection.select_epoch(EPOCHS, "accuracy"),
     "select_by must be one of .*, got 'accuracy'"),
    (lambda: selection.select_epoch({0: {"snd": NAN}}, "snd"),
     r"no epoch has a value of score 'snd' \(epochs \[0\]\)"),
    (lambda: selection.is_better(1.0, 0.0, "accuracy"),
     "score 'accuracy' has no direction"),
])
def test_bad_inputs_quote_the_value(call, message):
  with pytest.raises(ValueError, match=message):
    call()


# === The callback ===


class _ScriptedScores(keras.callbacks.Callback):
  """Stands in for LabelFreeScores: gives each epoch a scripted score, and
  keeps a copy of the weights each epoch ended with."""

  def __init__(self, values, shares=None):
    super().__init__()
    self.values = values
    self.shares = shares
    self.epoch_scores = {}
    self.weights_at = {}
    self.last_predictions = None

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:  # Stands in for the validation too.
      logs["val_target_accuracy"] = epoch / 10
    self.epoch_scores[epoch] = {"snd": self.values[epoch]}
    if self.shares:
      self.epoch_scores[epoch]["largest_class_share"] = self.shares[epoch]
    self.last_predictions = np.full(4, epoch, np.int32)
    self.weights_at[epoch] = self.model.get_weights()

  def compute(self, model=None):
    del model
    return {"snd": math.nan}


def _tiny_model():
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
  return model


def _fit(select_by, values, shares=None, max_share=None,
         exclude_after_herding=False, preferred_from_epoch=0):
  model = _tiny_model()
  scripted = _ScriptedScores(values, shares)
  keeper = model_selection.BestEpochWeights(
      select_by, scripted, max_share,
      exclude_after_herding=exclude_after_herding,
      preferred_from_epoch=preferred_from_epoch)
  x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
  model.fit(x, np.zeros((4, 2), np.float32), epochs=len(values),
            batch_size=2, verbose=0, callbacks=[scripted, keeper])
  return model, scripted, keeper


def test_callback_puts_the_best_epochs_weights_back():
  model, scripted, keeper = _fit("snd", [1.0, 3.0, 2.0, NAN])
  chosen = keeper.finish(model, final_epoch=3)
  assert (chosen.epoch, chosen.score, chosen.select_by) == (1, 3.0, "snd")
  assert chosen.restored and chosen.accuracy == 0.1  # Its own, not the last.
  np.testing.assert_array_equal(chosen.predictions, np.full(4, 1))
  for got, expected in zip(model.get_weights(), scripted.weights_at[1]):
    np.testing.assert_array_equal(got, expected)
  assert any(np.any(got != last) for got, last in
             zip(model.get_weights(), scripted.weights_at[3]))


@pytest.mark.parametrize("best, killed_after", [
    (1, 2),  # The best epoch was trained before the restart.
    (3, 2),  # After it.
    (1, 3),  # Resumed after the last epoch: nothing left to train.
])
def test_selection_survives_a_restart(best, killed_after, tmp_path):
  """A run killed after epoch `killed_after` and resumed from its backup
  keeps the epoch, weights, scores and accuracy an uninterrupted run keeps,
  with every epoch's scores."""
  values = [1.0, 2.0, 1.5, 0.5]
  values[best] = 5.0
  x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
  y = np.zeros((4, 2), np.float32)

  def process(first_epoch, last_epoch):
    model = _tiny_model()
    scripted = _ScriptedScores(values)
    keeper = model_selection.BestEpochWeights("snd", scripted)
    backup = backup_lib.TrainingBackup(str(tmp_path / "backup"), 2, 4, {},
                                       selector=keeper)
    resume = backup.restore(model)
    assert (resume.epoch if resume else 0) == first_epoch
    if first_epoch < last_epoch:
      model.fit(x, y, initial_epoch=first_epoch, epochs=last_epoch,
                batch_size=2, shuffle=False, verbose=0,
                callbacks=[scripted, keeper, backup])
    return model, scripted, keeper

  _, first, _ = process(0, killed_after + 1)
  model, _, keeper = process(killed_after + 1, 4)
  chosen = keeper.finish(model, final_epoch=3)
  assert (chosen.epoch, chosen.score, chosen.accuracy) == (best, 5.0,
                                                           best / 10)
  assert sorted(keeper.scores.epoch_scores) == [0, 1, 2, 3]
  np.testing.assert_array_equal(chosen.predictions, np.full(4, best))
  if best <= killed_after:  # The copy came from the backup.
    for got, expected in zip(model.get_weights(), first.weights_at[best]):
      np.testing.assert_array_equal(got, expected)


def test_a_damaged_selection_copy_falls_back_to_the_older_backup(tmp_path):
  model = _tiny_model()
  scripted = _ScriptedScores([1.0, 5.0, 2.0])
  keeper = model_selection.BestEpochWeights("snd", scripted)
  backup = backup_lib.TrainingBackup(str(tmp_path), 2, 3, {}, keep=3,
                                     selector=keeper)
  x = np.zeros((4, 3), np.float32)
  model.fit(x, np.zeros((4, 2), np.float32), epochs=3, batch_size=2,
            verbose=0, callbacks=[scripted, keeper, backup])
  newest = sorted(tmp_path.glob("ckpt-*"))[-1]
  (newest / backup_lib.BEST_FILE).write_bytes(b"torn")
  fresh = model_selection.BestEpochWeights("snd", _ScriptedScores([]))
  resume = backup_lib.TrainingBackup(str(tmp_path), 2, 3, {},
                                     selector=fresh).restore(model)
  assert resume.epoch == 2  # The backup after epoch 1, not the damaged one.
  assert sorted(fresh.scores.epoch_scores) == [0, 1]


def test_callback_keeps_the_last_weights_when_the_last_epoch_is_best():
  model, scripted, keeper = _fit("snd", [1.0, 2.0, 3.0])
  chosen = keeper.finish(model, final_epoch=2)
  assert (chosen.epoch, chosen.restored) == (2, False)
  for got, expected in zip(model.get_weights(), scripted.weights_at[2]):
    np.testing.assert_array_equal(got, expected)


def test_callback_skips_an_epoch_over_the_share_limit():
  model, scripted, keeper = _fit("snd", [1.0, 3.0, 2.0, 0.5],
                                 shares=[0.2, 0.9, 0.3, 0.2], max_share=0.6)
  chosen = keeper.finish(model, final_epoch=3)
  assert (chosen.epoch, chosen.score, chosen.restored) == (2, 2.0, True)
  for got, expected in zip(model.get_weights(), scripted.weights_at[2]):
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("flags, expected", [
    ([True, False, True, True, False, True], [2, 3, 5]),
    ([True, True, False], []),     # Collapsed at the start only.
    ([False, False], []),          # Never collapsed.
    ([True, True], []),            # Never spread.
])
def test_collapsed_after_spreading(flags, expected):
  # Unordered input: epochs are taken in order.
  epochs = dict(reversed(list(enumerate(flags))))
  assert selection.collapsed_after_spreading(epochs, bool) == expected
  assert selection.collapsed_after_spreading(
      list(enumerate(flags)), bool) == expected


@pytest.mark.parametrize("exclude_after_herding, expected", [
    (False, 3),  # Epoch 3 spread its predictions again: the best SND.
    (True, 0),   # The herd began at epoch 1: only epoch 0 is left.
])
def test_callback_excludes_the_epochs_after_a_herd(exclude_after_herding,
                                                   expected):
  model, scripted, keeper = _fit(
      "snd", [1.0, 3.0, 2.0, 5.0], shares=[0.2, 0.9, 0.3, 0.2],
      max_share=0.6, exclude_after_herding=exclude_after_herding)
  assert keeper.herding_epoch == 1
  chosen = keeper.finish(model, final_epoch=3)
  assert chosen.epoch == expected
  for got, want in zip(model.get_weights(), scripted.weights_at[expected]):
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("preferred_from_epoch, expected", [
    (0, 1),  # The best score.
    (2, 2),  # The best of epochs 2 and 3.
    (3, 3),  # The last epoch alone (a refinement run's).
])
def test_callback_keeps_a_preferred_epoch_over_better_scored_earlier_ones(
    preferred_from_epoch, expected):
  model, scripted, keeper = _fit("snd", [1.0, 5.0, 3.0, 2.0],
                                 preferred_from_epoch=preferred_from_epoch)
  chosen = keeper.finish(model, final_epoch=3)
  assert chosen.epoch == expected
  for got, want in zip(model.get_weights(), scripted.weights_at[expected]):
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shares, exclude_after_herding, expected", [
    # The preferred last epoch collapsed: the best earlier one is kept.
    ([0.2, 0.2, 0.2, 0.9], False, 1),
    # The run herded at epoch 2: nothing from it on, the last included.
    ([0.2, 0.2, 0.9, 0.2], True, 1),
    # Without the herd exclusion the recovered last epoch is kept.
    ([0.2, 0.2, 0.9, 0.2], False, 3),
])
def test_a_preferred_epoch_that_collapsed_or_followed_a_herd_is_not_kept(
    shares, exclude_after_herding, expected):
  model, scripted, keeper = _fit("snd", [1.0, 5.0, 3.0, 2.0], shares,
                                 max_share=0.5,
                                 exclude_after_herding=exclude_after_herding,
                                 preferred_from_epoch=3)
  chosen = keeper.finish(model, final_epoch=3)
  assert chosen.epoch == expected
  for got, want in zip(model.get_weights(), scripted.weights_at[expected]):
    np.testing.assert_array_equal(got, want)


def test_callback_with_last_copies_nothing():
  model, _, keeper = _fit("last", [3.0, 1.0])
  assert keeper._best is None  # pylint: disable=protected-access
  chosen = keeper.finish(model, final_epoch=1)
  assert (chosen.select_by, chosen.epoch, chosen.score) == ("last", 1, None)


def test_callback_without_the_score_falls_back_to_last():
  # E.g. --select_by=kmeans_agreement for the source-only baseline.
  model, _, keeper = _fit("kmeans_agreement", [1.0, 2.0])
  chosen = keeper.finish(model, final_epoch=1)
  assert (chosen.select_by, chosen.epoch, chosen.restored) == ("last", 1,
                                                               False)


def test_callback_resumed_after_the_last_epoch_scores_the_model():
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
  keeper = model_selection.BestEpochWeights("snd", _ScriptedScores([]))
  chosen = keeper.finish(model, final_epoch=9)
  assert (chosen.select_by, chosen.epoch, chosen.accuracy) == ("last", 9,
                                                               None)
  assert math.isnan(chosen.scores["snd"])


@pytest.mark.parametrize("select_by, expected", [
    ("entropy", 2),  # Epoch 1 has the lowest entropy but has collapsed.
    ("snd", 2),
    ("last", 3),
])
def test_a_collapsed_epoch_is_never_selected(select_by, expected):
  epochs = {0: {"entropy": 1.0, "balance": 0.9, "snd": 1.0},
            1: {"entropy": 0.1, "balance": 0.2, "snd": 9.0},
            2: {"entropy": 0.5, "balance": 0.8, "snd": 2.0},
            3: {"entropy": 0.6, "balance": 0.8, "snd": 1.5}}
  assert selection.select_epoch(epochs, select_by)[0] == expected


@pytest.mark.parametrize("max_share, expected", [
    (None, 1),  # Balance alone: epoch 1 (most confident) is eligible.
    (0.5, 2),   # Epoch 1's largest class takes 0.6 > 0.5: collapsed.
    (0.6, 1),   # At the limit is not above it.
])
def test_an_epoch_over_the_share_limit_is_never_selected(max_share, expected):
  epochs = {0: {"entropy": 1.0, "balance": 0.9, "largest_class_share": 0.2},
            1: {"entropy": 0.1, "balance": 0.7, "largest_class_share": 0.6},
            2: {"entropy": 0.5, "balance": 0.8, "largest_class_share": 0.3}}
  assert selection.select_epoch(epochs, "entropy", max_share)[0] == expected


def test_when_every_epoch_collapsed_the_last_is_kept():
  epochs = {0: {"entropy": 0.3, "balance": 0.1},
            1: {"entropy": 0.2, "balance": 0.05}}
  assert selection.select_epoch(epochs, "entropy") == (1, None)


# Largest class shares over six epochs, limit 0.5: the run starts
# collapsed (epoch 0), spreads (1-2), herds at 3, spreads again at 5.
HERDING_SHARES = [0.8, 0.3, 0.2, 0.7, 0.9, 0.25]


def _herding_epochs():
  # Entropy falls every epoch: the most confident eligible epoch is the
  # latest one allowed.
  return {epoch: {"entropy": 1.0 - 0.1 * epoch, "balance": 0.9,
                  "largest_class_share": share}
          for epoch, share in enumerate(HERDING_SHARES)}


@pytest.mark.parametrize("shares, expected", [
    (HERDING_SHARES, 3),
    ([0.8, 0.9, 0.2, 0.3], None),  # Collapsed at the start only.
    ([0.2, 0.3, 0.4], None),       # Never collapsed.
    ([0.9, 0.8], None),            # Never spread.
    ([0.2, 0.6], 1),
])
def test_herding_epoch(shares, expected):
  epochs = {e: {"largest_class_share": s} for e, s in enumerate(shares)}
  assert selection.herding_epoch(epochs, max_share=0.5) == expected
  # Balance below MIN_BALANCE counts as a collapse too.
  by_balance = {e: {"balance": 0.2 if s > 0.5 else 0.9}
                for e, s in enumerate(shares)}
  assert selection.herding_epoch(by_balance) == expected


@pytest.mark.parametrize("exclude_after_herding, expected", [
    (False, 5),  # The most confident eligible epoch, after the herd.
    (True, 2),   # The most confident before the herd began at 3.
])
def test_select_epoch_excludes_the_epochs_after_a_herd(
    exclude_after_herding, expected):
  epoch, _ = selection.select_epoch(
      _herding_epochs(), "entropy", max_share=0.5,
      exclude_after_herding=exclude_after_herding)
  assert epoch == expected


def test_a_run_that_never_herded_selects_as_before():
  epochs = {e: {"entropy": 1.0 - 0.1 * e, "balance": 0.9,
                "largest_class_share": 0.2} for e in range(4)}
  assert (selection.select_epoch(epochs, "entropy", 0.5, True)
          == selection.select_epoch(epochs, "entropy", 0.5, False))
