"""Tests of srdc_tf.clustering.epoch_state (steps 2-5 of an SRDC epoch) and
of the callback's per-epoch schedule."""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from srdc_tf import objectives
from srdc_tf.callbacks.epoch_state import EpochStateCallback
from srdc_tf.clustering import neighbours
from srdc_tf.clustering.epoch_state import compute_epoch_state
from srdc_tf.clustering.kmeans import kmeans
from srdc_tf.models.srdc_model import SRDCModel

# K = 2, Df = 2, Dh = 3.
SOURCE_F = [[0.0, 1.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]]
SOURCE_H = [[1.0, 1.0, 1.0], [3.0, 1.0, 1.0], [0.0, 5.0, 0.0], [0.0, 7.0, 0.0]]
SOURCE_LABELS = [0, 0, 1, 1]
# Source class means:
#   c_s(f) = [[1, 0.5], [11, 10]];  c_s(h) = [[2, 1, 1], [0, 6, 0]].
SOURCE_CF = [[1.0, 0.5], [11.0, 10.0]]
SOURCE_CH = [[2.0, 1.0, 1.0], [0.0, 6.0, 0.0]]
TARGET_F = [[1.0, 1.0], [3.0, 1.0], [9.0, 9.0], [11.0, 11.0]]
# The h-level clusters of the target are {0, 2}, {1, 3}, unlike f's {0, 1},
# {2, 3}, so the pseudo-labels tell which level they come from.
TARGET_H = [[2.0, 2.0, 2.0], [0.0, 8.0, 1.0], [2.0, 0.0, 2.0], [0.0, 6.0, 1.0]]

# Euclidean k-means at f from c_s(f): [1,1] -> 0 (0.25 vs 181), [3,1] -> 0
# (4.25 vs 145), [9,9] -> 1 (145.25 vs 5), [11,11] -> 1 (...vs 1), so centres
# [[2, 1], [10, 10]], stable afterwards.
KMEANS_CF = [[2.0, 1.0], [10.0, 10.0]]
F_LABELS = [0, 0, 1, 1]
# At h from c_s(h): [2,2,2] -> 0 (2 vs 24), [0,8,1] -> 1 (53 vs 5),
# [2,0,2] -> 0 (2 vs 44), [0,6,1] -> 1 (37 vs 1): centres
# [[2, 1, 2], [0, 7, 1]], stable afterwards.
KMEANS_CH_FIRST = [[2.0, 1.0, 2.0], [0.0, 7.0, 1.0]]


def _state(first_epoch, target_predictions=(0, 0, 1, 1), **kwargs):
  return compute_epoch_state(SOURCE_F, SOURCE_H, SOURCE_LABELS, TARGET_F,
                             TARGET_H, list(target_predictions), 2,
                             first_epoch, **kwargs)


def test_first_epoch_hand_computed():
  state = _state(True, target_predictions=(1, 1, 1, 1))
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), F_LABELS)
  assert state.pseudo_labels.dtype == tf.int32
  np.testing.assert_allclose(state.source_centroids_f.numpy(), SOURCE_CF,
                             rtol=1e-6)
  np.testing.assert_allclose(state.target_centroids_f.numpy(), KMEANS_CF,
                             rtol=1e-6)
  # mu = (c_t + c_s) / 2:
  # f: ([2,1] + [1,0.5]) / 2 = [1.5, 0.75]; ([10,10] + [11,10]) / 2 = [10.5, 10]
  # h: ([2,1,2] + [2,1,1]) / 2 = [2, 1, 1.5]; ([0,7,1] + [0,6,0]) / 2
  #    = [0, 6.5, 0.5].
  np.testing.assert_allclose(state.centres_f.numpy(),
                             [[1.5, 0.75], [10.5, 10.0]], rtol=1e-6)
  np.testing.assert_allclose(state.centres_h.numpy(),
                             [[2.0, 1.0, 1.5], [0.0, 6.5, 0.5]], rtol=1e-6)
  # Every source weight is 1 in the first epoch.
  np.testing.assert_array_equal(state.source_weights.numpy(), np.ones(4))
  assert state.source_weights.dtype == tf.float32


@pytest.mark.parametrize("target_predictions", [(0, 0, 1, 1), (1, 1, 1, 1),
                                                (1, 0, 0, 1)])
def test_first_epoch_starts_kmeans_from_source_centroids(target_predictions):
  # With 0 iterations the k-means centres are its initial centres, so they
  # must be c_s whatever the classifier predicts; assignment to c_s(f):
  # [1,1] -> 0, [3,1] -> 0, [9,9] -> 1, [11,11] -> 1.
  state = _state(True, target_predictions, kmeans_iterations=0)
  np.testing.assert_allclose(state.target_centroids_f.numpy(), SOURCE_CF,
                             rtol=1e-6)
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), [0, 0, 1, 1])
  # (c_s + c_s) / 2 = c_s at both levels.
  np.testing.assert_allclose(state.centres_f.numpy(), SOURCE_CF, rtol=1e-6)
  np.testing.assert_allclose(state.centres_h.numpy(), SOURCE_CH, rtol=1e-6)


def test_later_epoch_starts_kmeans_from_target_prediction_means():
  # Predictions [1, 0, 1, 1]: c_t(f) = [[3, 1], mean([1,1],[9,9],[11,11])]
  # = [[3, 1], [7, 7]]; with 0 iterations those are the k-means centres.
  # Assignment: [1,1] -> 0 (4 vs 72), [3,1] -> 0, [9,9] -> 1 (100 vs 8),
  # [11,11] -> 1.
  state = _state(False, (1, 0, 1, 1), kmeans_iterations=0)
  np.testing.assert_allclose(state.target_centroids_f.numpy(),
                             [[3.0, 1.0], [7.0, 7.0]], rtol=1e-6)
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), [0, 0, 1, 1])
  # mu_f = ([[3,1],[7,7]] + [[1,0.5],[11,10]]) / 2 = [[2, 0.75], [9, 8.5]].
  np.testing.assert_allclose(state.centres_f.numpy(),
                             [[2.0, 0.75], [9.0, 8.5]], rtol=1e-6)
  # c_t(h) by the same predictions: [[0,8,1], mean([2,2,2],[2,0,2],[0,6,1])]
  # = [[0, 8, 1], [4/3, 8/3, 5/3]]; mu_h = (c_t(h) + c_s(h)) / 2
  # = [([0,8,1] + [2,1,1]) / 2, ([4/3,8/3,5/3] + [0,6,0]) / 2]
  # = [[1, 4.5, 1], [2/3, 13/3, 5/6]].
  np.testing.assert_allclose(
      state.centres_h.numpy(),
      [[1.0, 4.5, 1.0], [2.0 / 3.0, 13.0 / 3.0, 5.0 / 6.0]], rtol=1e-6)


def test_later_epoch_never_predicted_class_falls_back_to_source_mean():
  # Predictions all 0: c_t(f) = [mean of all target f, c_s(f)[1]]
  # = [[6, 5.5], [11, 10]]. Assignment: [1,1] -> 0 (45.25 vs 181),
  # [3,1] -> 0 (29.25 vs 145), [9,9] -> 1 (21.25 vs 5), [11,11] -> 1.
  state = _state(False, (0, 0, 0, 0), kmeans_iterations=0)
  np.testing.assert_allclose(state.target_centroids_f.numpy(),
                             [[6.0, 5.5], [11.0, 10.0]], rtol=1e-6)
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), [0, 0, 1, 1])


# Later-epoch weights against the final k-means centres [[2,1],[10,10]]:
#   [0,1] vs [2,1]:    cos = 1 / sqrt5          -> (1 + 0.4472136) / 2
#   [2,0] vs [2,1]:    cos = 4 / (2 sqrt5)      -> (1 + 0.8944272) / 2
#   [10,10] vs [10,10]: cos = 1                 -> 1
#   [12,10] vs [10,10]: cos = 220 / sqrt(244 * 200) = 220 / 220.9072
#                                               -> (1 + 0.9958932) / 2
LATER_WEIGHTS = [(1.0 + 1.0 / math.sqrt(5.0)) / 2.0,
                 (1.0 + 2.0 / math.sqrt(5.0)) / 2.0,
                 1.0,
                 (1.0 + 220.0 / math.sqrt(48800.0)) / 2.0]
# Later epoch, predictions [1, 0, 1, 1], 5 iterations.
# f: from [[3,1],[7,7]] the first round assigns [0,0,1,1] -> [[2,1],[10,10]].
# h: from [[0,8,1],[4/3,8/3,5/3]]: [2,2,2] -> 1 (41 vs 1), [0,8,1] -> 0,
#    [2,0,2] -> 1 (69 vs 69/9), [0,6,1] -> 0 (4 vs 120/9): centres
#    [[0,7,1],[2,1,2]] (the h clusters come out in the other order).
KMEANS_CH_LATER = [[0.0, 7.0, 1.0], [2.0, 1.0, 2.0]]


def test_later_epoch_hand_computed():
  state = _state(False, (1, 0, 1, 1))
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), F_LABELS)
  np.testing.assert_allclose(state.target_centroids_f.numpy(), KMEANS_CF,
                             rtol=1e-6)
  np.testing.assert_allclose(state.centres_f.numpy(),
                             [[1.5, 0.75], [10.5, 10.0]], rtol=1e-6)
  # mu_h = ([[0,7,1],[2,1,2]] + [[2,1,1],[0,6,0]]) / 2 = [[1,4,1],[1,3.5,1]].
  np.testing.assert_allclose(state.centres_h.numpy(),
                             [[1.0, 4.0, 1.0], [1.0, 3.5, 1.0]], rtol=1e-6)
  # Weights against the k-means centres, not the initial c_t [[3,1],[7,7]].
  np.testing.assert_allclose(state.source_weights.numpy(), LATER_WEIGHTS,
                             rtol=1e-6)


def test_later_epoch_without_soft_selection_gives_ones():
  state = _state(False, (1, 0, 1, 1), soft_selection=False)
  np.testing.assert_array_equal(state.source_weights.numpy(), np.ones(4))
  np.testing.assert_allclose(state.target_centroids_f.numpy(), KMEANS_CF,
                             rtol=1e-6)


@pytest.mark.parametrize(
    "first_epoch, predictions, centres_f, centres_h",
    [
        (True, (0, 0, 1, 1), KMEANS_CF, KMEANS_CH_FIRST),
        (False, (1, 0, 1, 1), KMEANS_CF, KMEANS_CH_LATER),
    ])
def test_centre_init_target_uses_kmeans_centres(first_epoch, predictions,
                                                centres_f, centres_h):
  state = _state(first_epoch, predictions, centre_init="target")
  np.testing.assert_allclose(state.centres_f.numpy(), centres_f, rtol=1e-6)
  np.testing.assert_allclose(state.centres_h.numpy(), centres_h, rtol=1e-6)
  mean = _state(first_epoch, predictions, centre_init="mean")
  np.testing.assert_allclose(
      mean.centres_f.numpy(),
      (np.array(centres_f) + np.array(SOURCE_CF)) / 2.0, rtol=1e-6)
  np.testing.assert_allclose(
      mean.centres_h.numpy(),
      (np.array(centres_h) + np.array(SOURCE_CH)) / 2.0, rtol=1e-6)


def test_spherical_first_epoch():
  # Cosine k-means at f from c_s(f) directions 26.6 and 42.3 deg:
  # [1,1] (45 deg) -> 1, [3,1] (18.4 deg) -> 0, [9,9], [11,11] -> 1; stable.
  # The centres handed on are the clusters' plain means:
  # [[3, 1], mean([1,1],[9,9],[11,11]) = [7, 7]], not unit vectors.
  state = _state(True, spherical=True)
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), [1, 0, 1, 1])
  np.testing.assert_allclose(state.target_centroids_f.numpy(),
                             [[3.0, 1.0], [7.0, 7.0]], rtol=1e-6)
  # mu_f = ([[3,1],[7,7]] + [[1,0.5],[11,10]]) / 2 = [[2, 0.75], [9, 8.5]].
  np.testing.assert_allclose(state.centres_f.numpy(),
                             [[2.0, 0.75], [9.0, 8.5]], rtol=1e-6)
  # At h the cosine clusters are those of the Euclidean run: {0,2}, {1,3}.
  np.testing.assert_allclose(
      state.centres_h.numpy(),
      (np.array(KMEANS_CH_FIRST) + np.array(SOURCE_CH)) / 2.0, rtol=1e-6)


@pytest.mark.parametrize("first_epoch", [True, False])
@pytest.mark.parametrize("spherical", [False, True])
def test_pseudo_labels_are_f_level_kmeans(first_epoch, spherical):
  rng = np.random.default_rng(5)
  k, ns, nt = 3, 18, 21
  source_labels = np.arange(ns) % k
  target_predictions = rng.integers(0, k, size=nt)
  means = rng.normal(scale=3.0, size=(k, 6))
  source_f = (means[source_labels] + rng.normal(size=(ns, 6))).astype(
      np.float32)
  target_f = (means[rng.integers(0, k, size=nt)] + 1.0
              + rng.normal(size=(nt, 6))).astype(np.float32)
  source_h = rng.normal(size=(ns, 4)).astype(np.float32)
  target_h = rng.normal(size=(nt, 4)).astype(np.float32)
  state = compute_epoch_state(source_f, source_h, source_labels, target_f,
                              target_h, target_predictions, k, first_epoch,
                              kmeans_iterations=3, spherical=spherical)

  def means_by(features, labels, fallback):
    out = np.array(fallback, np.float64)
    for c in range(k):
      if np.any(labels == c):
        out[c] = features[labels == c].mean(axis=0)
    return out

  source_cf = means_by(source_f, source_labels, np.zeros((k, 6)))
  init = source_cf if first_epoch else means_by(target_f, target_predictions,
                                                source_cf)
  labels, centres = kmeans(target_f, init.astype(np.float32), 3, spherical)
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), labels.numpy())
  if spherical:
    centres = means_by(target_f, labels.numpy(), init)
  np.testing.assert_allclose(state.target_centroids_f.numpy(), centres,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(state.source_centroids_f.numpy(), source_cf,
                             rtol=1e-5, atol=1e-6)
  if first_epoch:
    np.testing.assert_array_equal(state.source_weights.numpy(), np.ones(ns))
  else:
    own = np.asarray(centres, np.float64)[source_labels]
    cos = np.sum(source_f * own, axis=1) / (
        np.linalg.norm(source_f, axis=1) * np.linalg.norm(own, axis=1))
    np.testing.assert_allclose(state.source_weights.numpy(), (1 + cos) / 2,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("centre_init", ["median", "source", ""])
def test_rejects_unknown_centre_init(centre_init):
  with pytest.raises(ValueError, match=re.escape(repr(centre_init))):
    _state(True, centre_init=centre_init)


def test_zero_empty_clusters_starts_a_never_predicted_class_at_zero():
  # Predictions all 0: class 1 has no target sample, so its initial centre
  # is 0 (the released code) instead of c_s. With 0 iterations the k-means
  # centres are the initial ones: c_t(f) = [mean of all, 0].
  state = _state(False, (0, 0, 0, 0), kmeans_iterations=0,
                 empty_clusters="zero")
  np.testing.assert_allclose(state.target_centroids_f.numpy(),
                             [[6.0, 5.5], [0.0, 0.0]], rtol=1e-6)
  keep = _state(False, (0, 0, 0, 0), kmeans_iterations=0)
  np.testing.assert_allclose(keep.target_centroids_f.numpy(),
                             [[6.0, 5.5], SOURCE_CF[1]], rtol=1e-6)


def _two_cluster_points():
  # 1-D: from centres 0 and 4 the first assignment is {0, 1, 2}, {6}; the
  # update gives 1 and 6, whose assignment is {0, 1, 2}, {6} again.
  return [[0.0], [1.0], [2.0], [6.0]], [[0.0], [4.0]]


@pytest.mark.parametrize("kmeans_labels", ["final", "last_iteration"])
def test_kmeans_labels_agree_with_plain_kmeans(kmeans_labels):
  points, initial = _two_cluster_points()
  labels, centres = kmeans(points, initial, 1)
  np.testing.assert_array_equal(labels.numpy(), [0, 0, 0, 1])
  np.testing.assert_allclose(centres.numpy(), [[1.0], [6.0]], rtol=1e-6)
  state = compute_epoch_state(points, points, [0, 0, 0, 1], points, points,
                              [0, 0, 1, 1], 2, first_epoch=False,
                              kmeans_iterations=1,
                              kmeans_labels=kmeans_labels)
  # Initial centres by prediction: means of {0, 1} and {2, 6}: 0.5 and 4.
  # One assignment: {0, 1, 2} and {6}: "last_iteration" labels; its update
  # 1 and 6 is c_t. "final" assigns once more to 1 and 6: the same here.
  np.testing.assert_array_equal(state.pseudo_labels.numpy(), [0, 0, 0, 1])
  np.testing.assert_allclose(state.target_centroids_f.numpy(),
                             [[1.0], [6.0]], rtol=1e-6)


def test_last_iteration_labels_are_one_assignment_fewer():
  # Initial centres 0 and 3 (the means of predictions {0} and {1, 2, 6}):
  # assignment 1 (from 0, 3): {0, 1}, {2, 6} -> update 0.5, 4;
  # assignment 2 (from 0.5, 4): {0, 1, 2}, {6} -> update 1, 6.
  # With 2 iterations "last_iteration" gives assignment 2 and c_t = [1, 6];
  # "final" gives the assignment to [1, 6] (the same labels) and c_t [1, 6].
  # With 1 iteration "last_iteration" gives assignment 1 and c_t
  # [0.5, 4]; "final" gives the assignment to [0.5, 4]: {0, 1, 2}, {6}.
  points = [[0.0], [1.0], [2.0], [6.0]]
  def state(iterations, labels):
    return compute_epoch_state(points, points, [0, 0, 0, 1], points, points,
                               [0, 1, 1, 1], 2, first_epoch=False,
                               kmeans_iterations=iterations,
                               kmeans_labels=labels)
  last = state(1, "last_iteration")
  np.testing.assert_array_equal(last.pseudo_labels.numpy(), [0, 0, 1, 1])
  np.testing.assert_allclose(last.target_centroids_f.numpy(), [[0.5], [4.0]],
                             rtol=1e-6)
  final = state(1, "final")
  np.testing.assert_array_equal(final.pseudo_labels.numpy(), [0, 0, 0, 1])
  np.testing.assert_allclose(final.target_centroids_f.numpy(),
                             [[0.5], [4.0]], rtol=1e-6)
  np.testing.assert_array_equal(state(2, "last_iteration").pseudo_labels,
                                [0, 0, 0, 1])


@pytest.mark.parametrize("kwargs", [{"empty_clusters": "none"},
                                    {"kmeans_labels": "first"}])
def test_rejects_unknown_clustering_switches(kwargs):
  with pytest.raises(ValueError, match=re.escape(repr(*kwargs.values()))):
    _state(True, **kwargs)


# === The callback: lambda and q's mixing weight per epoch ===


class _Scalar:
  """Stands in for a model's scalar variable."""

  def __init__(self):
    self.value = None

  def assign(self, value):
    self.value = value


@pytest.mark.parametrize("warmup_epochs", [1, 3])
def test_callback_sets_lambda_zero_through_the_warmup(warmup_epochs):
  class Model:
    penalty, q_mix, beta, source_only = _Scalar(), _Scalar(), 0.5, True

  callback = EpochStateCallback(None, None, epochs=20,
                                warmup_epochs=warmup_epochs)
  callback.set_model(Model())
  lambdas, logged, mixes = [], [], []
  for epoch in range(20):
    callback.on_epoch_begin(epoch)
    lambdas.append(callback.model.penalty.value)
    logged.append(callback.epoch_logs["lambda"])
    mixes.append(callback.model.q_mix.value)
  assert lambdas == logged == [
      objectives.penalty_ramp(epoch, 20, warmup_epochs)
      for epoch in range(20)]
  assert lambdas[:warmup_epochs] == [0.0] * warmup_epochs
  assert 0.0 < lambdas[warmup_epochs] < lambdas[-1] < 1.0
  # q is the k-means one-hot labels in the first epoch only, warm-up or not.
  assert mixes == [0.0] + [0.5] * 19


# === The callback: refinement epochs train on the neighbour vote ===


def _domain_batches(features, labels, rows=None):
  rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
  return tf.data.Dataset.from_tensor_slices((
      np.asarray(features, np.float32)[rows],
      np.asarray(labels, np.int32)[rows], rows.astype(np.int32))).batch(3)


@pytest.mark.parametrize("target_rows", [
    None,                # The whole target in one pass.
    [[0, 2], [3, 1]],    # Two shards: the vote gathers every shard's rows.
])
def test_refinement_epochs_train_on_the_vote_taken_once(target_rows):
  keras.utils.set_random_seed(0)
  model = SRDCModel(None, num_classes=2, input_shape=(2,),
                    num_source_examples=4, num_target_examples=4,
                    bottleneck_dim=3, beta=0.5)
  target = _domain_batches(TARGET_F, [-1] * 4)
  shards = target_rows and [_domain_batches(TARGET_F, [-1] * 4, rows)
                            for rows in target_rows]
  callback = EpochStateCallback(_domain_batches(SOURCE_F, SOURCE_LABELS),
                                target, epochs=4, refinement_epochs=2,
                                refinement_neighbours=1,
                                target_shards=shards)
  callback.set_model(model)

  def vote():
    f, _, logits = model.embed(np.asarray(TARGET_F, np.float32))
    return np.asarray(neighbours.voted_labels(f, logits, 1))

  callback.on_epoch_begin(1)
  # Before refinement: the f-level k-means labels and q mixed by beta.
  np.testing.assert_array_equal(model.target_pseudo_labels, F_LABELS)
  assert float(model.q_mix) == 0.5
  assert "refinement_changed" not in callback.epoch_logs
  callback.on_epoch_begin(2)
  voted = vote()
  np.testing.assert_array_equal(model.target_pseudo_labels, voted)
  assert float(model.q_mix) == 0.0
  _, _, logits = model.embed(np.asarray(TARGET_F, np.float32))
  assert callback.epoch_logs["refinement_changed"] == pytest.approx(
      np.mean(voted != np.argmax(logits, axis=1)))
  # The classifier flips every prediction; the next epoch keeps the vote.
  model.fc2.kernel.assign(-model.fc2.kernel)
  model.fc2.bias.assign(-model.fc2.bias)
  assert not np.array_equal(vote(), voted)
  callback.on_epoch_begin(3)
  np.testing.assert_array_equal(model.target_pseudo_labels, voted)
  assert float(model.q_mix) == 0.0


@pytest.mark.parametrize("target_rows, voters", [
    ([0, 2], 1),   # Fewer samples than neighbours + 1: all the others vote.
    ([3], 0),      # One sample: its own prediction.
])
def test_refinement_on_a_target_smaller_than_the_vote(target_rows, voters):
  keras.utils.set_random_seed(0)
  features = np.asarray(TARGET_F, np.float32)[target_rows]
  model = SRDCModel(None, num_classes=2, input_shape=(2,),
                    num_source_examples=4,
                    num_target_examples=len(target_rows), bottleneck_dim=3)
  callback = EpochStateCallback(
      _domain_batches(SOURCE_F, SOURCE_LABELS),
      _domain_batches(features, [-1] * len(target_rows)), epochs=2,
      refinement_epochs=1, refinement_neighbours=3)
  callback.set_model(model)
  callback.on_epoch_begin(1)
  f, _, logits = model.embed(features)
  expected = (neighbours.voted_labels(f, logits, voters) if voters
              else np.argmax(logits, axis=1))
  np.testing.assert_array_equal(model.target_pseudo_labels, expected)
  assert callback.epoch_logs["refinement_changed"] == pytest.approx(
      np.mean(np.asarray(expected) != np.argmax(logits, axis=1)))


@pytest.mark.parametrize("kwargs, message", [
    ({"refinement_epochs": 4}, "refinement_epochs must be in [0, epochs=4), "
     "got 4"),
    ({"refinement_epochs": -1}, "got -1"),
    ({"refinement_neighbours": 0}, "refinement_neighbours must be >= 1, "
     "got 0"),
])
def test_callback_rejects_bad_refinement_settings(kwargs, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    EpochStateCallback(None, None, epochs=4, **kwargs)
