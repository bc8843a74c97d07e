"""Everything SRDC recomputes at the start of an epoch, from features."""

import dataclasses

import numpy as np
import tensorflow as tf

from srdc_tf.clustering import arrays
from srdc_tf.clustering import centroids as centroids_lib
from srdc_tf.clustering import kmeans as kmeans_lib
from srdc_tf.clustering import shards as shards_lib
from srdc_tf.clustering import source_weights as source_weights_lib

CENTRE_INITS = ("mean", "target")
KMEANS_LABELS = ("final", "last_iteration")


@dataclasses.dataclass(frozen=True)
class EpochState:
  """The per-epoch state; every field a float32/int32 tensor.

  Attributes:
    pseudo_labels: `[Nt]` k-means assignment of the target at `f`.
    centres_f: `[K, Df]` new value of the learnable centres `mu_f`.
    centres_h: `[K, Dh]` new value of `mu_h`.
    source_weights: `[Ns]` soft source selection weights.
    target_centroids_f: `[K, Df]` final k-means centres at `f`.
    source_centroids_f: `[K, Df]` source class means at `f`.
  """
  pseudo_labels: tf.Tensor
  centres_f: tf.Tensor
  centres_h: tf.Tensor
  source_weights: tf.Tensor
  target_centroids_f: tf.Tensor
  source_centroids_f: tf.Tensor


def compute_epoch_state(source_f, source_h, source_labels, target_f, target_h,
                        target_predictions, num_classes, first_epoch,
                        kmeans_iterations=5, spherical=False,
                        centre_init="mean", soft_selection=True,
                        empty_clusters="keep", kmeans_labels="final"):
  """Steps 2-5 of SRDC's per-epoch update, given inference-mode features.

  Args:
    source_f: `[Ns, Df]` source features `f`.
    source_h: `[Ns, Dh]` source features `h`.
    source_labels: `[Ns]` true source labels.
    target_f: `[Nt, Df]` target features `f`.
    target_h: `[Nt, Dh]` target features `h`.
    target_predictions: `[Nt]` the classifier's target predictions.
    num_classes: K.
    first_epoch: k-means starts from the source centroids (else from the
      target centroids by prediction) and every source weight is 1.
    kmeans_iterations: Lloyd iterations.
    spherical: spherical instead of Euclidean k-means.
    centre_init: "mean" sets `mu = (c_t + c_s) / 2`; "target" sets
      `mu = c_t` (the released code's choice when the target is Amazon).
    soft_selection: compute source weights; all ones when False.
    empty_clusters: "keep": a k-means cluster that empties keeps its
      previous centre, and a class the classifier never predicts starts
      k-means from its source centroid; "zero": both become the zero vector
      (the released code).
    kmeans_labels: "final": the pseudo-labels are a last assignment to the
      final k-means centres; "last_iteration": they are the assignment of
      the last iteration and `c_t` the means of that assignment (the
      released code; with `kmeans_iterations` >= 1 it is one assignment
      fewer). Spherical k-means always uses "final".

  Returns:
    An `EpochState`.

  Cost: per level, one pass over the source features, one over the target
  features per k-means iteration plus one (and one more for the initial
  target centroids after the first epoch), and one over the source `f` for
  the weights. Float32 features held in 64-byte aligned numpy arrays
  (`arrays.aligned_empty`, what `inference.extract` returns) are read in
  place, never copied; other inputs are converted once.
  """
  return compute_sharded_epoch_state(
      [shards_lib.whole(source_f, source_h, source_labels)],
      [shards_lib.whole(target_f, target_h, target_predictions)],
      num_classes, first_epoch, num_source=int(np.shape(source_labels)[0]),
      num_target=int(np.shape(target_predictions)[0]),
      kmeans_iterations=kmeans_iterations, spherical=spherical,
      centre_init=centre_init, soft_selection=soft_selection,
      empty_clusters=empty_clusters, kmeans_labels=kmeans_labels)


def compute_sharded_epoch_state(source, target, num_classes, first_epoch,
                                num_source, num_target,
                                sum_over_shards=shards_lib.local_sum,
                                kmeans_iterations=5, spherical=False,
                                centre_init="mean", soft_selection=True,
                                empty_clusters="keep", kmeans_labels="final"):
  """`compute_epoch_state` of samples split into shards.

  Each process passes its own shards; class and cluster centroids come from
  per-cluster sums and counts summed over every shard (`clustering.shards`),
  so no process needs another's features, and the per-sample tables are
  gathered: every process returns the same whole `EpochState`. With one
  shard per domain it is `compute_epoch_state`.

  Args:
    source: this process' source `clustering.shards.Shard`s (true labels).
    target: its target `Shard`s (the classifier's predictions as labels).
    num_classes: K.
    first_epoch: see `compute_epoch_state`.
    num_source: source samples over all shards.
    num_target: target samples over all shards.
    sum_over_shards: sums a per-shard list over every shard.
    kmeans_iterations: Lloyd iterations (as in `compute_epoch_state`).
    spherical: spherical instead of Euclidean k-means.
    centre_init: "mean" or "target".
    soft_selection: compute source weights; all ones when False.
    empty_clusters: "keep" or "zero".
    kmeans_labels: "final" or "last_iteration".

  Returns:
    An `EpochState` of the whole domains.
  """
  _check_settings(centre_init, empty_clusters, kmeans_labels)
  # Converted once (shared, not copied, when aligned: `clustering.arrays`).
  features = {(domain, level): [arrays.as_float32(getattr(shard, level))
                                for shard in shards]
              for domain, shards in (("source", source), ("target", target))
              for level in ("f", "h")}
  source_labels = [tf.cast(shard.labels, tf.int32) for shard in source]
  target_predictions = [tf.cast(shard.labels, tf.int32) for shard in target]
  reduce = dict(sum_over_shards=sum_over_shards)
  centres = {}
  pseudo_labels = None
  target_centroids_f = source_centroids_f = None
  for level in ("f", "h"):
    src, tgt = features["source", level], features["target", level]
    source_centroids, _ = centroids_lib.sharded_class_centroids(
        src, source_labels, num_classes, **reduce)
    if first_epoch:
      initial = source_centroids
    else:
      # Classes the classifier never predicts fall back to the source mean
      # (or to zero).
      initial, _ = centroids_lib.sharded_class_centroids(
          tgt, target_predictions, num_classes,
          fallback=None if empty_clusters == "zero" else source_centroids,
          **reduce)
    last_iteration = (kmeans_labels == "last_iteration" and not spherical
                      and kmeans_iterations > 0)
    assignments, target_centroids = kmeans_lib.sharded_kmeans(
        tgt, initial, kmeans_iterations - 1 if last_iteration
        else kmeans_iterations, spherical, empty_clusters=empty_clusters,
        **reduce)
    if last_iteration:
      # `assignments` are then the last iteration's; its update follows.
      target_centroids, _ = centroids_lib.sharded_class_centroids(
          tgt, assignments, num_classes,
          fallback=None if empty_clusters == "zero" else target_centroids,
          **reduce)
    if spherical:
      # Spherical centres are unit directions; the learnable centres live in
      # the unnormalised feature space, so take the clusters' plain means.
      target_centroids, _ = centroids_lib.sharded_class_centroids(
          tgt, assignments, num_classes, fallback=initial, **reduce)
    if centre_init == "mean":
      centres[level] = (target_centroids + source_centroids) / 2.0
    else:
      centres[level] = target_centroids
    if level == "f":
      pseudo_labels = shards_lib.gather_rows(target, assignments, num_target,
                                             sum_over_shards)
      target_centroids_f = target_centroids
      source_centroids_f = source_centroids
  if first_epoch or not soft_selection:
    weights = tf.ones([num_source], tf.float32)
  else:
    weights = shards_lib.gather_rows(source, [
        source_weights_lib.source_weights(f, labels, target_centroids_f)
        for f, labels in zip(features["source", "f"], source_labels)],
                                     num_source, sum_over_shards)
  return EpochState(
      pseudo_labels=pseudo_labels,
      centres_f=centres["f"],
      centres_h=centres["h"],
      source_weights=weights,
      target_centroids_f=target_centroids_f,
      source_centroids_f=source_centroids_f)


def _check_settings(centre_init, empty_clusters, kmeans_labels):
  if centre_init not in CENTRE_INITS:
    raise ValueError(
        f"centre_init must be one of {CENTRE_INITS}, got {centre_init!r}")
  if empty_clusters not in kmeans_lib.EMPTY_CLUSTERS:
    raise ValueError(f"empty_clusters must be one of "
                     f"{kmeans_lib.EMPTY_CLUSTERS}, got {empty_clusters!r}")
  if kmeans_labels not in KMEANS_LABELS:
    raise ValueError(f"kmeans_labels must be one of {KMEANS_LABELS}, got "
                     f"{kmeans_labels!r}")
