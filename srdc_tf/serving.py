"""Exports a trained model as a SavedModel for TF Serving."""

import os
import re
import shutil
import tempfile

import tensorflow as tf


def next_version(export_base):
  """The next integer version under `export_base` (1 when there is none)."""
  if not os.path.isdir(export_base):
    return 1
  versions = [int(n) for n in os.listdir(export_base) if re.fullmatch(r"\d+", n)]
  return max(versions, default=0) + 1


class _ServingModule(tf.Module):

  def __init__(self, model, class_names):
    super().__init__()
    self.model = model
    self.class_names = tf.constant(list(class_names))
    shape = (None,) + tuple(model.input_shape_)

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, "images")])
    def serve(images):
      f, h, logits = model.embed(images, training=False)
      probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
      class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int32)
      return {"probabilities": probabilities,
              "class_id": class_ids,
              "class_name": tf.gather(self.class_names, class_ids),
              "embedding": tf.cast(h, tf.float32)}

    self.serve = serve


def export_saved_model(model, export_base, class_names):
  """Writes `model` as `export_base/<next version>/`, atomically.

  The SavedModel is written into a temporary folder beside the target and
  renamed into place, so TF Serving never sees a half-written version.

  Args:
    model: an `SRDCModel`.
    export_base: folder of versions, e.g. `saved_models/<name>`.
    class_names: class names, in label order.

  Returns:
    The path of the new version.
  """
  os.makedirs(export_base, exist_ok=True)
  version = next_version(export_base)
  final = os.path.join(export_base, str(version))
  staging = tempfile.mkdtemp(prefix=f".{version}-", dir=export_base)
  try:
    module = _ServingModule(model, class_names)
    tf.saved_model.save(module, staging,
                        signatures={"serving_default": module.serve})
    os.rename(staging, final)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return final
