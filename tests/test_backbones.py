"""LeNet's optional dropout (`--lenet_dropout`): where its layers sit, that
they act in training only, and which backbones and rates are refused."""

import re

import keras
import numpy as np
import pytest

from srdc_tf.models import backbones
from srdc_tf.models import build_backbone
from srdc_tf.models import SRDCModel

SHAPE = (28, 28, 1)


def _layer_names(backbone):
  body = backbone.get_layer("lenet")
  return [layer.name for layer in body.layers]


def test_no_dropout_builds_the_lenet_saved_before_the_option():
  names = _layer_names(build_backbone("lenet", SHAPE))
  assert not any("dropout" in name for name in names)


def test_dropout_sits_on_conv2_channels_and_fc_units():
  backbone = build_backbone("lenet", SHAPE, dropout=0.5)
  names = _layer_names(backbone)
  # CDAN's and SHOT's LeNet: channel dropout right after conv2, unit
  # dropout after fc's ReLU.
  assert names[names.index("conv2") + 1] == "conv2_dropout"
  assert names[names.index("relu3") + 1] == "fc_dropout"
  body = backbone.get_layer("lenet")
  assert isinstance(body.get_layer("conv2_dropout"),
                    keras.layers.SpatialDropout2D)
  assert body.get_layer("conv2_dropout").rate == 0.5
  assert body.get_layer("fc_dropout").rate == 0.5


def test_dropout_changes_training_outputs_only():
  keras.utils.set_random_seed(0)
  plain = build_backbone("lenet", SHAPE)
  dropped = build_backbone("lenet", SHAPE, dropout=0.5)
  dropped.set_weights(plain.get_weights())  # No weights of its own.
  images = np.random.default_rng(0).uniform(0, 255, (16,) + SHAPE)
  np.testing.assert_array_equal(dropped(images, training=False),
                                plain(images, training=False))
  trained = np.asarray(dropped(images, training=True))
  reference = np.asarray(plain(images, training=True))
  alive = reference > 0
  zeroed = (trained == 0) & alive
  # About half of fc's active units are dropped, the rest scaled by 2
  # (fewer survive: conv2's dropped channels change fc's input too).
  assert 0.3 < zeroed.sum() / alive.sum() < 0.8
  assert not np.allclose(trained, reference)


def test_channel_dropout_drops_whole_feature_maps():
  keras.utils.set_random_seed(1)
  body = build_backbone("lenet", SHAPE, dropout=0.5).get_layer("lenet")
  probe = keras.Model(body.input, [body.get_layer("conv2").output,
                                   body.get_layer("conv2_dropout").output])
  images = np.random.default_rng(1).uniform(0, 1, (4,) + SHAPE)
  conv2, dropped = (np.asarray(t) for t in probe(images, training=True))
  for image in range(4):
    for channel in range(conv2.shape[-1]):
      kept = dropped[image, ..., channel]
      # Each feature map is either dropped whole or kept whole at 2x.
      assert (np.all(kept == 0)
              or np.allclose(kept, 2 * conv2[image, ..., channel],
                             rtol=1e-5, atol=1e-6))
  dropped_maps = np.all(dropped == 0, axis=(1, 2))
  assert 0 < dropped_maps.mean() < 1


def test_a_model_with_dropout_saves_and_reloads(tmp_path):
  model = SRDCModel(build_backbone("lenet", SHAPE, dropout=0.5),
                    num_classes=3, input_shape=SHAPE, num_source_examples=4,
                    num_target_examples=4, bottleneck_dim=8)
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  images = np.random.default_rng(2).uniform(0, 255, (2,) + SHAPE)
  np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5)
  assert "fc_dropout" in _layer_names(loaded.backbone)


@pytest.mark.parametrize("name, dropout, message", [
    ("lenet", 1.0, "--lenet_dropout must be in [0, 1), got 1.0"),
    ("lenet", -0.1, "--lenet_dropout must be in [0, 1), got -0.1"),
    ("mobilenet_v2", 0.5,
     "--lenet_dropout=0.5 needs --backbone=lenet, got --backbone=mobilenet_v2"),
])
def test_bad_dropout_is_refused(name, dropout, message):
  with pytest.raises(ValueError, match=re.escape(message)):
    backbones.check_dropout(name, dropout)


@pytest.mark.parametrize("fused", [True, False])
def test_freeze_batch_norm_reaches_the_nested_body(fused):
  backbone = build_backbone("mobilenet_v2", (32, 32, 3),
                            fused_batch_norm=fused)
  batch_norm_paths = lambda variables: [  # pylint: disable=g-long-lambda
      v.path for v in variables if "_BN" in v.path or "_bn" in v.path]
  assert batch_norm_paths(backbone.trainable_variables)
  frozen = backbones.freeze_batch_norm(backbone)
  # MobileNetV2: one BatchNorm after each of its 52 convolutions.
  assert frozen == 52
  assert not batch_norm_paths(backbone.trainable_variables)
  assert len(backbone.trainable_variables) == 52  # The kernels.
  # Training mode no longer normalises by the batch.
  images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3))
  np.testing.assert_allclose(backbone(images, training=True),
                             backbone(images, training=False), atol=1e-6)
