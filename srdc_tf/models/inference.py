"""Inference-mode passes over a whole domain."""

import dataclasses

import numpy as np
import tensorflow as tf

from srdc_tf import console
from srdc_tf.clustering import arrays


@dataclasses.dataclass(frozen=True)
class DomainOutputs:
  """Inference-mode outputs of every example of a domain, in index order."""
  f: np.ndarray
  h: np.ndarray
  logits: np.ndarray
  labels: np.ndarray
  indices: np.ndarray = None  # Each row's index in its domain.

  @property
  def predictions(self):
    return np.argmax(self.logits, axis=1).astype(np.int32)


def extract(model, dataset, label=None):
  """Runs `model.embed` in inference mode over `(image, label, index)`
  batches and returns the outputs ordered by index, as 64-byte aligned
  arrays that the per-epoch clustering reads without copying them
  (`clustering.arrays`).

  Outside a replica context the model's mirrored variables read as this
  worker's copy, which holds the same values on every worker (the same
  all-reduced updates; BatchNorm moving statistics averaged over replicas
  by `SRDCModel.train_step`). `dataset` is iterated as is, never
  distributed: the whole domain, or the shard of it that this process
  embeds (`pipeline.eval_dataset(..., shard=)`).

  Args:
    model: an `SRDCModel`.
    dataset: batches of `(image, label, index)`.
    label: shown with the progress of the pass (`console.Progress`, level
      2); None: no progress.

  Returns:
    A `DomainOutputs`, with the `indices` of its rows in the domain.
  """
  embed = getattr(model, "_srdc_embed_fn", None)
  if embed is None:
    embed = tf.function(lambda x: model.embed(x, training=False),
                        reduce_retracing=True)
    model._srdc_embed_fn = embed  # One trace per model, not per epoch.
  parts = {"f": [], "h": [], "logits": [], "labels": [], "index": []}
  batches = int(dataset.cardinality()) if label else 0
  progress = console.Progress(label, total=batches if batches > 0 else None,
                              enabled=None if label else False,
                              transient=True)
  for images, labels, indices in dataset:
    progress.update()
    f, h, logits = embed(images)
    for key, value in (("f", f), ("h", h), ("logits", logits),
                       ("labels", labels), ("index", indices)):
      parts[key].append(np.asarray(tf.cast(value, tf.float32)
                                   if key in ("f", "h", "logits") else value))
  progress.close()
  # Where each example goes: its rank by index.
  indices = np.concatenate(parts.pop("index"))
  order = np.argsort(indices, kind="stable")
  rank = np.empty(len(indices), np.int64)
  rank[order] = np.arange(len(indices))
  outputs = {}
  for key, batches in parts.items():
    # Each batch is written straight to its rows (no concatenated copy) of
    # an aligned array, which the per-epoch clustering reads in place.
    outputs[key] = arrays.aligned_empty(
        (len(indices),) + batches[0].shape[1:], batches[0].dtype)
    start = 0
    for batch in batches:
      outputs[key][rank[start:start + len(batch)]] = batch
      start += len(batch)
    batches.clear()
  return DomainOutputs(**outputs, indices=indices[order].astype(np.int32))
