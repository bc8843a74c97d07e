"""Pixel preprocessing inside the model, so exports take raw pixels."""

import keras
from keras import ops

MODES = ("caffe", "tf", "unit")
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="srdc_tf")
class ImagePreprocessing(keras.layers.Layer):
  """Maps pixels in [0, 255] to what a backbone's weights expect.

  Args:
    mode: "caffe" (RGB to BGR, ImageNet mean subtracted: Keras' ResNet-50
      weights), "tf" (scaled to [-1, 1]: MobileNetV2), or "unit" (scaled to
      [0, 1]: backbones trained from scratch).
    **kwargs: base layer arguments.
  """

  def __init__(self, mode="unit", **kwargs):
    super().__init__(**kwargs)
    if mode not in MODES:
      raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    self.mode = mode

  def call(self, inputs):
    inputs = ops.cast(inputs, self.compute_dtype)
    if self.mode == "unit":
      return inputs / 255.0
    if self.mode == "tf":
      return inputs / 127.5 - 1.0
    bgr = ops.flip(inputs, axis=-1)
    return bgr - ops.convert_to_tensor(_CAFFE_BGR_MEAN, self.compute_dtype)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    config = super().get_config()
    config.update({"mode": self.mode})
    return config
