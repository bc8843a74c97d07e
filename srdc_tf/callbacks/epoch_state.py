"""Recomputes SRDC's clustering state at the start of every epoch."""

from absl import logging
import keras
import numpy as np

from srdc_tf import clustering
from srdc_tf import objectives
from srdc_tf.clustering import neighbours as neighbours_lib
from srdc_tf.models import inference


class EpochStateCallback(keras.callbacks.Callback):
  """SRDC's start-of-epoch update, written into the model's variables.

  At every epoch start: sets lambda (`model.penalty`) and the q mixing
  weight (`model.q_mix`: 0 in the first epoch, where q is the one-hot
  pseudo-labels, else beta); runs the model in inference mode over every
  source and target example; and assigns the result of
  `clustering.compute_epoch_state` (pseudo-labels, centres, source weights).

  `last_state` and `last_outputs` (source and target `DomainOutputs`) keep
  the latest update for other callbacks (TensorBoard views).

  The pass can be sharded across replicas and workers (`source_shards`,
  `target_shards`, `sum_over_shards`; see `distribute.EpochSharding`): each
  process then embeds only its own shards, the centroids and k-means come
  from per-cluster sums and counts summed over every shard, and the
  per-sample tables are gathered (`clustering.compute_sharded_epoch_state`),
  so every worker assigns the same state without holding the others'
  features. The state is computed from the same weights everywhere (the
  workers apply the same all-reduced gradients, and `SRDCModel` averages
  BatchNorm moving statistics over replicas). Bitwise equality with an
  unsharded run is not promised (sums over shards round differently), nor
  between workers' kernels unless they run on the same hardware and
  TensorFlow build, with `--deterministic`.

  A run resumed in the middle of an epoch (see `callbacks.backup`) calls
  `keep_restored_state`: that epoch then keeps the state restored with the
  weights instead of recomputing it from weights that are already half an
  epoch further.

  With `refinement_epochs` R > 0 (beyond the paper), the last R epochs
  train on the target labels voted by each sample and its
  `refinement_neighbours` nearest target neighbours
  (`clustering.neighbours`), as one-hot q: the vote is taken once, at the
  first of them, from that epoch's pass, and kept in
  `model.target_pseudo_labels` (so a resumed run keeps it too); k-means
  still sets the centres and the source weights.

  At epoch end it adds to the logs what the state was: `lambda`,
  `kmeans_accuracy` and `classifier_accuracy` (against target labels, when
  the target has them; reported only, never trained on), `kmeans_agreement`
  (pseudo-labels against the classifier), `source_weight_mean`, and at
  the first refinement epoch `refinement_changed` (the share of the
  target whose voted label differs from the classifier's prediction).

  Args:
    source_data: `(image, label, index)` batches of the whole source, no
      augmentation (for other callbacks; the pass reads `source_shards`
      when given).
    target_data: the same for the target.
    epochs: number of epochs E of the run (for lambda).
    warmup_epochs: epochs at lambda 0 before its ramp
      (`objectives.penalty_ramp`); 1 is the paper's schedule.
    kmeans_iterations: Lloyd iterations per epoch.
    spherical_kmeans: spherical instead of Euclidean k-means.
    centre_init: "mean" or "target" (see `compute_epoch_state`).
    soft_selection: compute source weights (else all 1).
    empty_clusters: "keep" or "zero" (see `compute_epoch_state`).
    kmeans_labels: "final" or "last_iteration" (see `compute_epoch_state`).
    source_shards: this process' shards of the source, a list of such
      batches (`pipeline.eval_dataset(..., shard=)`); None: `[source_data]`.
    target_shards: the same for the target.
    sum_over_shards: sums per-shard values over every shard of every
      process (`distribute.EpochSharding.sum_over_shards`).
    refinement_epochs: the last epochs that train on neighbour-voted
      target labels; 0 (the paper) for none.
    refinement_neighbours: neighbours of each sample in the vote.
  """

  def __init__(self, source_data, target_data, epochs, warmup_epochs=1,
               kmeans_iterations=5,
               spherical_kmeans=False, centre_init="mean",
               soft_selection=True, empty_clusters="keep",
               kmeans_labels="final", source_shards=None, target_shards=None,
               sum_over_shards=clustering.local_sum, refinement_epochs=0,
               refinement_neighbours=3):
    super().__init__()
    self.source_data = source_data
    self.target_data = target_data
    self.source_shards = list(source_shards or [source_data])
    self.target_shards = list(target_shards or [target_data])
    self.sum_over_shards = sum_over_shards
    self.epochs = int(epochs)
    self.warmup_epochs = int(warmup_epochs)
    self.kmeans_iterations = int(kmeans_iterations)
    self.spherical_kmeans = bool(spherical_kmeans)
    self.centre_init = centre_init
    self.soft_selection = bool(soft_selection)
    self.empty_clusters = empty_clusters
    self.kmeans_labels = kmeans_labels
    if not 0 <= int(refinement_epochs) < self.epochs:
      raise ValueError(f"refinement_epochs must be in [0, epochs="
                       f"{self.epochs}), got {refinement_epochs!r}")
    if int(refinement_neighbours) < 1:
      raise ValueError(f"refinement_neighbours must be >= 1, got "
                       f"{refinement_neighbours!r}")
    self.refinement_epochs = int(refinement_epochs)
    self.refinement_neighbours = int(refinement_neighbours)
    self.last_state = None
    self.last_outputs = None
    self._epoch_logs = {}
    self._restored = None

  @property
  def epoch_logs(self):
    """What this epoch's update reports (added to the logs at epoch end)."""
    return dict(self._epoch_logs)

  def keep_restored_state(self, epoch, epoch_logs):
    """Skips the update at the start of `epoch` once: the model's variables
    already hold that epoch's state, restored from a mid-epoch backup.

    Args:
      epoch: the interrupted epoch (0-based).
      epoch_logs: what its update reported (`epoch_logs` when backed up).
    """
    self._restored = (int(epoch), dict(epoch_logs))

  def on_epoch_begin(self, epoch, logs=None):
    model = self.model
    if self._restored is not None and self._restored[0] == epoch:
      # Restored with the weights: pseudo-labels, centres, source weights,
      # lambda and q_mix are those of the uninterrupted run at this step.
      self._epoch_logs = self._restored[1]
      self._restored = None
      self.last_state = self.last_outputs = None
      return
    penalty = objectives.penalty_ramp(epoch, self.epochs,
                                      self.warmup_epochs)
    model.penalty.assign(penalty)
    first_refinement = self.epochs - self.refinement_epochs
    refining = self.refinement_epochs and epoch >= first_refinement
    # One-hot q in the first epoch (k-means labels) and while refining
    # (voted labels).
    model.q_mix.assign(0.0 if epoch == 0 or refining else model.beta)
    self._epoch_logs = {"lambda": penalty}
    if model.source_only:
      return
    # Each process embeds its own shards (see the class docstring).
    source = self._embed(self.source_shards, f"epoch {epoch + 1} state: "
                         "source batches")
    target = self._embed(self.target_shards, f"epoch {epoch + 1} state: "
                         "target batches")
    num_source = int(model.source_weights.shape[0])
    num_target = int(model.target_pseudo_labels.shape[0])
    source_shards = [clustering.Shard(out.f, out.h, out.labels, out.indices)
                     for out in source]
    target_shards = [clustering.Shard(out.f, out.h, out.predictions,
                                      out.indices) for out in target]
    state = clustering.compute_sharded_epoch_state(
        source_shards, target_shards, model.num_classes,
        first_epoch=epoch == 0, num_source=num_source, num_target=num_target,
        sum_over_shards=self.sum_over_shards,
        kmeans_iterations=self.kmeans_iterations,
        spherical=self.spherical_kmeans, centre_init=self.centre_init,
        soft_selection=self.soft_selection,
        empty_clusters=self.empty_clusters, kmeans_labels=self.kmeans_labels)
    # The whole target's predictions and labels, in one gather.
    predictions, labels = np.asarray(clustering.gather_rows(
        target_shards, [np.stack([out.predictions, out.labels], axis=1)
                        for out in target],
        num_target, self.sum_over_shards)).T
    if not refining:
      model.target_pseudo_labels.assign(state.pseudo_labels)
    elif epoch == first_refinement:
      self._vote(target_shards, target, num_target, predictions)
    model.centres_f.assign(state.centres_f)
    model.centres_h.assign(state.centres_h)
    model.source_weights.assign(state.source_weights)
    self.last_state = state
    # Kept for views that want this epoch's features without another pass
    # (only this process' shards exist: none when the pass is sharded).
    whole = len(source) == 1 and len(source[0].labels) == num_source
    self.last_outputs = (source[0], target[0]) if whole else None
    pseudo = np.asarray(state.pseudo_labels)
    self._epoch_logs.update({
        "kmeans_agreement": float(np.mean(pseudo == predictions)),
        "source_weight_mean": float(np.mean(state.source_weights)),
    })
    labelled = labels >= 0
    if labelled.any():
      self._epoch_logs["kmeans_accuracy"] = float(
          np.mean(pseudo[labelled] == labels[labelled]))
      self._epoch_logs["classifier_accuracy"] = float(np.mean(
          predictions[labelled] == labels[labelled]))

  def on_epoch_end(self, epoch, logs=None):
    if logs is not None:
      logs.update(self._epoch_logs)

  def _vote(self, target_shards, target, num_target, predictions):
    """Sets the pseudo-labels to the neighbour vote over the whole target
    (every process gathers every shard's `f` and logits).

    `predictions` are the classifier's, already gathered. A target with
    fewer than `refinement_neighbours` + 1 samples votes with all the
    others; a target of one sample trains on its own prediction.
    """
    def gather(rows):
      return np.asarray(clustering.gather_rows(
          target_shards, rows, num_target, self.sum_over_shards))

    neighbours = min(self.refinement_neighbours, num_target - 1)
    if neighbours < self.refinement_neighbours:
      logging.warning("refinement_neighbours=%d but the target has %d "
                      "samples: each votes with its %d others",
                      self.refinement_neighbours, num_target, neighbours)
    if neighbours < 1:
      voted = np.asarray(predictions, np.int32)
    else:
      voted = neighbours_lib.voted_labels(
          gather([out.f for out in target]),
          gather([out.logits for out in target]), neighbours)
    self.model.target_pseudo_labels.assign(voted)
    self._epoch_logs["refinement_changed"] = neighbours_lib.changed_fraction(
        voted, predictions)

  def _embed(self, shards, label):
    return [inference.extract(self.model, shard, label) for shard in shards]
