"""Backbones: raw pixels in [0, 255] to one pooled feature vector `f`."""

import os

import keras

from srdc_tf.models import fused_batch_norm as fused_batch_norm_lib
from srdc_tf.models import precision
from srdc_tf.models import preprocessing

BACKBONES = ("lenet", "mobilenet_v2", "resnet50")
# `--backbone_batch_norm`: how the BatchNorm layers of a trained backbone
# (or of its top above a cut) run in training.
BATCH_NORM_MODES = ("train", "frozen")
# The smallest input side each backbone can run on: LeNet's two 5x5
# convolutions and 2x2 poolings leave 1 pixel of a 16-pixel side; Keras'
# ImageNet models refuse sides below 32.
MIN_IMAGE_SIZE = {"lenet": 16, "mobilenet_v2": 32, "resnet50": 32}


def _lenet(inputs, dropout=0.0):
  # The LeNet of CDAN's and SHOT's digit experiments. Their dropout (0.5 on
  # conv2's channels and on fc's units) is `dropout`; at 0 no dropout layer
  # is built, so models saved before the option load unchanged.
  x = keras.layers.Conv2D(20, 5, name="conv1")(inputs)
  x = keras.layers.MaxPooling2D(2, name="pool1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = keras.layers.Conv2D(50, 5, name="conv2")(x)
  if dropout:
    x = keras.layers.SpatialDropout2D(dropout, name="conv2_dropout")(x)
  x = keras.layers.MaxPooling2D(2, name="pool2")(x)
  x = keras.layers.ReLU(name="relu2")(x)
  x = keras.layers.Flatten(name="flatten")(x)
  x = keras.layers.Dense(500, name="fc")(x)
  x = keras.layers.ReLU(name="relu3")(x)
  if dropout:
    x = keras.layers.Dropout(dropout, name="fc_dropout")(x)
  return x


def check_dropout(name, dropout):
  """Raises unless `dropout` is a valid `--lenet_dropout` for backbone
  `name`: a rate in [0, 1), and 0 for every backbone but LeNet (the
  pretrained ones keep their own architecture)."""
  if not 0.0 <= dropout < 1.0:
    raise ValueError(f"--lenet_dropout must be in [0, 1), got {dropout}")
  if dropout and name != "lenet":
    raise ValueError(f"--lenet_dropout={dropout} needs --backbone=lenet, "
                     f"got --backbone={name}")


def _load_weights(model, weights, name):
  if not os.path.isfile(weights):
    raise FileNotFoundError(
        f"--weights={weights!r} for backbone {name!r}: no such file")
  try:
    model.load_weights(weights)
  except Exception as error:  # Keras raises several types for a mismatch.
    raise ValueError(
        f"--weights={weights!r} does not fit backbone {name!r}: {error}"
    ) from error


def build_body(name, input_shape, weights=None, fused_batch_norm=True,
               dropout=0.0):
  """The architecture of a backbone without its preprocessing.

  Args:
    name: one of `BACKBONES`.
    input_shape: `(height, width, channels)` of the images.
    weights: None (random), "imagenet" (downloaded by Keras; resnet50 and
      mobilenet_v2), or the path of a weights file of this architecture.
    fused_batch_norm: its BatchNorm layers run TensorFlow's fused kernel
      (`models.fused_batch_norm`: the same math, about twice as fast on a
      CPU); False: Keras' own ops.
    dropout: LeNet's dropout rate in training (`_lenet`); 0 for the
      others.

  Returns:
    `(body, mode)`: a functional `keras.Model` from preprocessed pixels to
    pooled features, and the `ImagePreprocessing` mode it expects.
  """
  if name not in BACKBONES:
    raise ValueError(f"--backbone must be one of {BACKBONES}, got {name!r}")
  check_dropout(name, dropout)
  if weights in ("", "none", "None"):
    weights = None
  input_shape = tuple(int(d) for d in input_shape)
  if name == "lenet":
    if weights == "imagenet":
      raise ValueError("--weights=imagenet is not available for lenet")
    mode = "unit"
    body_inputs = keras.Input(shape=input_shape)
    body = keras.Model(body_inputs, _lenet(body_inputs, dropout),
                       name="lenet")
  else:
    if input_shape[-1] != 3:
      raise ValueError(
          f"backbone {name!r} needs 3-channel images, got {input_shape}")
    application = {"resnet50": keras.applications.ResNet50,
                   "mobilenet_v2": keras.applications.MobileNetV2}[name]
    mode = "caffe" if name == "resnet50" else "tf"
    body = application(include_top=False, pooling="avg",
                       input_shape=input_shape,
                       weights="imagenet" if weights == "imagenet" else None)
  if weights not in (None, "imagenet"):
    # Keras 3 weight files match layers by position, so load into the
    # architecture itself before it is wrapped.
    _load_weights(body, weights, name)
  if fused_batch_norm:
    body, _ = fused_batch_norm_lib.fuse_batch_norms(body)
  if keras.config.dtype_policy().compute_dtype == "bfloat16":
    precision.compute_elementwise_in_float32(body)
  return body, mode


def with_preprocessing(network, mode, input_shape, name):
  """`network` behind the raw-pixel preprocessing of `mode`.

  Args:
    network: a `keras.Model` of preprocessed pixels.
    mode: the `ImagePreprocessing` mode.
    input_shape: `(height, width, channels)` of the raw images.
    name: the name of the returned model.

  Returns:
    A functional `keras.Model` from raw pixels in [0, 255].
  """
  inputs = keras.Input(shape=tuple(int(d) for d in input_shape),
                       name="images")
  # float32 pixel arithmetic also under a mixed policy (the body casts).
  x = preprocessing.ImagePreprocessing(mode, dtype="float32",
                                       name="preprocessing")(inputs)
  return keras.Model(inputs, network(x), name=name)


def build_backbone(name, input_shape, weights=None, trainable=True,
                   fused_batch_norm=True, dropout=0.0):
  """Builds a backbone that maps raw pixels to pooled features.

  Args:
    name: one of `BACKBONES`.
    input_shape: `(height, width, channels)` of the images.
    weights: None (random), "imagenet" (downloaded by Keras; resnet50 and
      mobilenet_v2), or the path of a weights file of this architecture.
    trainable: whether the backbone is trained. A frozen backbone runs its
      BatchNorm layers in inference mode. (`models.cut` trains only the
      last layers.)
    fused_batch_norm: see `build_body`.
    dropout: see `build_body`.

  Returns:
    A functional `keras.Model` named `backbone` with one input and a 2-D
    output `[batch, feature_dim]`.
  """
  body, mode = build_body(name, input_shape, weights, fused_batch_norm,
                          dropout)
  body.trainable = trainable
  return with_preprocessing(body, mode, input_shape, "backbone")


def freeze_batch_norm(model):
  """Runs every BatchNorm layer of `model`, nested models included, in
  inference mode with its scale and offset fixed (`--backbone_batch_norm=
  frozen`).

  A trained BatchNorm layer normalises each batch by that batch's own
  statistics, one domain at a time in SRDC's step, and evaluation by its
  moving averages; a frozen one normalises both by the statistics the
  backbone was pretrained with, as a wholly frozen backbone does.

  Args:
    model: a `keras.Model`.

  Returns:
    The number of BatchNorm layers frozen.
  """
  frozen = 0
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.trainable = False
      frozen += 1
  return frozen
