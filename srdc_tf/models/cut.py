"""A pretrained backbone cut in two: frozen layers below, trained layers above.

Below the cut the backbone is a fixed function of the image, so its output
(the activations at the cut) can be computed once per image view and cached
(`data.feature_cache`); training then runs only the layers above the cut,
at the cut's small spatial size. The cut must be a single tensor that every
layer above it depends on alone (no skip connection across it): in
MobileNetV2 the input of a block without a residual add (`block_16_expand`,
the last block), in ResNet-50 the output of a residual block
(`conv5_block3_1_conv`'s input, the last block).
"""

import dataclasses

import keras

from srdc_tf.models import backbones
from srdc_tf.models import srdc_model

# How far up from the top `valid_trainable_layers` looks for cut points
# (an error message lists them; every backbone here has its blocks there).
_SEARCH_DEPTH = 80


@dataclasses.dataclass(frozen=True)
class CutBackbone:
  """A backbone split at `cut_layer`.

  Attributes:
    bottom: frozen `keras.Model` from raw pixels to the activations at the
      cut (preprocessing included); BatchNorm runs in inference mode.
    top: trainable `keras.Model` from those activations to the pooled
      features, named "backbone"; its BatchNorm layers train.
    cut_layer: the name of the first layer above the cut.
    trainable_layers: how many of the body's last layers are above it.
  """
  bottom: keras.Model
  top: keras.Model
  cut_layer: str
  trainable_layers: int


def _top_at(body, index):
  """The body's layers from `index` up as a model of the cut tensor, or
  None when they do not hang on that one tensor alone."""
  layer = body.layers[index]
  if isinstance(layer.input, (list, tuple, dict)):
    return None
  try:
    top = keras.Model(layer.input, body.output, name="backbone")
  except ValueError:  # Some layer above also reads a tensor below the cut.
    return None
  above = {id(l) for l in body.layers[index:]}
  inside = {id(l) for l in top.layers if not isinstance(l, keras.layers.InputLayer)}
  return top if inside == above else None


def valid_trainable_layers(body):
  """The values of `trainable_layers` that cut `body` at a single tensor,
  among its last `_SEARCH_DEPTH` layers, in increasing order."""
  count = len(body.layers)
  return [count - index
          for index in range(count - 1, max(0, count - _SEARCH_DEPTH), -1)
          if _top_at(body, index) is not None]


def resolve_trainable_layers(body, trainable_layers=None, trainable_from=None):
  """How many last layers of `body` train, from either way of naming the cut.

  Args:
    body: the backbone architecture (`backbones.build_body`).
    trainable_layers: the number of last layers that train, or None.
    trainable_from: the name of the first layer that trains, or None.

  Returns:
    The number of trainable last layers, an int in [1, len(body.layers)).

  Raises:
    ValueError: neither or both given, an unknown layer name, or a number
      out of range; the message names the flag and the value.
  """
  if (trainable_layers is None) == (trainable_from is None):
    raise ValueError("give exactly one of --trainable_layers and "
                     f"--trainable_from, got {trainable_layers!r} and "
                     f"{trainable_from!r}")
  count = len(body.layers)
  if trainable_from is not None:
    names = [layer.name for layer in body.layers]
    if trainable_from not in names:
      raise ValueError(f"--trainable_from={trainable_from!r}: {body.name} has "
                       f"no such layer (its last ones: {names[-14:]})")
    return count - names.index(trainable_from)
  if not 1 <= trainable_layers < count:
    raise ValueError(f"--trainable_layers={trainable_layers!r} must be in "
                     f"[1, {count - 1}] for {body.name}")
  return int(trainable_layers)


def split_backbone(name, input_shape, weights=None, trainable_layers=None,
                   trainable_from=None, fused_batch_norm=True):
  """Builds a backbone and splits it below its last trainable layers.

  Args:
    name: one of `backbones.BACKBONES`.
    input_shape: `(height, width, channels)` of the raw images.
    weights: as `backbones.build_body`.
    trainable_layers: the number of last layers that train, or None.
    trainable_from: the name of the first layer that trains, or None.
    fused_batch_norm: as `backbones.build_body`.

  Returns:
    A `CutBackbone`.

  Raises:
    ValueError: the cut is not a single tensor (the message lists the
      values of `--trainable_layers` that are), or as
      `resolve_trainable_layers`.
  """
  body, mode = backbones.build_body(name, input_shape, weights,
                                    fused_batch_norm)
  count = resolve_trainable_layers(body, trainable_layers, trainable_from)
  index = len(body.layers) - count
  top = _top_at(body, index)
  if top is None:
    raise ValueError(
        f"--trainable_layers={count} (first trainable layer "
        f"{body.layers[index].name!r}) does not cut {name} at a single "
        f"tensor: a connection crosses it. Cut points near the top: "
        f"--trainable_layers in {valid_trainable_layers(body)}")
  for layer in body.layers[:index]:
    layer.trainable = False
  below = keras.Model(body.input, body.layers[index].input,
                      name=f"{name}_below_{body.layers[index].name}")
  bottom = backbones.with_preprocessing(below, mode, input_shape, "bottom")
  return CutBackbone(bottom, top, body.layers[index].name, count)


def join(bottom, top):
  """The whole backbone, raw pixels to features, from its two parts (the
  layers are shared, not copied)."""
  images = keras.Input(shape=bottom.input_shape[1:], name="images")
  return keras.Model(images, top(bottom(images)), name="backbone")


def whole_network_model(model, bottom):
  """The `SRDCModel` that takes raw images: `bottom` in front of `model`.

  Args:
    model: an `SRDCModel` trained on the activations at the cut (its
      backbone is the part above the cut).
    bottom: the frozen part below the cut, raw pixels to those activations.

  Returns:
    A new `SRDCModel` whose backbone is `join(bottom, model.backbone)` (the
    same layer objects) and whose heads, centres and per-sample state are
    copies of `model`'s: what is saved as model.keras and exported.
  """
  config = model.get_config()
  for key in ("backbone", "input_shape", "name", "trainable", "dtype"):
    config.pop(key, None)
  whole = srdc_model.SRDCModel(
      join(bottom, model.backbone), input_shape=bottom.input_shape[1:],
      dtype=model.dtype_policy, name=model.name, **config)
  copy_head_state(model, whole)
  return whole


def copy_head_state(source, destination):
  """Copies what two `SRDCModel`s with the same heads hold outside their
  backbones: fc1, its BatchNorm, fc2, the centres and per-sample tables."""
  for name in ("fc1", "fc1_norm", "fc2"):
    getattr(destination, name).set_weights(getattr(source, name).get_weights())
  names = ["centres_f", "centres_h", "target_pseudo_labels",
           "source_weights", "penalty", "q_mix"]
  if source.backbone_frozen_epochs:
    names.append("backbone_trains")
  for name in names:
    getattr(destination, name).assign(getattr(source, name))
