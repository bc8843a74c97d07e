"""Inference-mode passes over a whole domain."""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class DomainOutputs:
  """Inference-mode outputs of every example of a domain, in index order."""
  f: np.ndarray
  h: np.ndarray
  logits: np.ndarray
  labels: np.ndarray

  @property
  def predictions(self):
    return np.argmax(self.logits, axis=1).astype(np.int32)


def extract(model, dataset):
  """Runs `model.embed` in inference mode over `(image, label, index)`
  batches and returns the outputs ordered by index.

  Outside a replica context the model's mirrored variables read as this
  worker's copy, which holds the same values on every worker (the same
  all-reduced updates; BatchNorm moving statistics averaged over replicas
  by `SRDCModel.train_step`). `dataset` is iterated as is, never
  distributed, so each worker reads all of it: every worker computes the
  same outputs, and the per-epoch state is computed identically
  everywhere.

  Args:
    model: an `SRDCModel`.
    dataset: batches of `(image, label, index)`.

  Returns:
    A `DomainOutputs`.
  """
  embed = getattr(model, "_srdc_embed_fn", None)
  if embed is None:
    embed = tf.function(lambda x: model.embed(x, training=False),
                        reduce_retracing=True)
    model._srdc_embed_fn = embed  # One trace per model, not per epoch.
  parts = {"f": [], "h": [], "logits": [], "labels": [], "index": []}
  for images, labels, indices in dataset:
    f, h, logits = embed(images)
    for key, value in (("f", f), ("h", h), ("logits", logits),
                       ("labels", labels), ("index", indices)):
      parts[key].append(np.asarray(tf.cast(value, tf.float32)
                                   if key in ("f", "h", "logits") else value))
  merged = {key: np.concatenate(value) for key, value in parts.items()}
  order = np.argsort(merged.pop("index"), kind="stable")
  return DomainOutputs(**{key: value[order] for key, value in merged.items()})
