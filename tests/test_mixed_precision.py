"""--precision=mixed_bfloat16: the layers compute in bfloat16, while the
losses, logits, centres, per-sample tables and per-epoch state stay
float32 (int32)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from srdc_tf import callbacks as callbacks_lib
from srdc_tf import run_data
from srdc_tf import run_settings
from srdc_tf.data import pipeline
from srdc_tf.models import backbones
from srdc_tf.models import precision
from srdc_tf.models import srdc_model

STATE_DTYPES = {"centres_f": "float32", "centres_h": "float32",
                "source_weights": "float32", "penalty": "float32",
                "q_mix": "float32", "target_pseudo_labels": "int32"}


def _settings(**changes):
  return run_settings.RunSettings(**{
      "source": "synthetic:source", "target": "synthetic:target",
      "model_dir": "", "synthetic_examples_per_class": 4, "image_size": 16,
      "bottleneck_dim": 8, "batch_size": 8, "kmeans_iterations": 2,
      "precision": "mixed_bfloat16", **changes})


@pytest.fixture(name="mixed")
def _mixed():
  """A mixed_bfloat16 model, its data and a training batch."""
  settings = _settings()
  data = run_data.load_data(settings)
  model = run_data.build_model(settings, data)
  batch = next(iter(pipeline.train_dataset(
      data.source, data.target, settings.batch_size, settings.transform)))
  return settings, data, model, batch


def _assert_state_dtypes(model):
  for name, dtype in STATE_DTYPES.items():
    variable = getattr(model, name)
    assert variable.dtype == dtype, name
    # Not autocast to bfloat16 when read inside the model's own call.
    assert not variable._autocast, name  # pylint: disable=protected-access


def test_build_model_restores_the_global_policy(mixed):
  _, _, model, _ = mixed
  assert keras.config.dtype_policy().name == "float32"
  assert model.fc1.compute_dtype == "bfloat16"
  assert model.fc1.kernel.dtype == "float32"  # float32 master weights.
  body = model.backbone.get_layer("lenet")
  assert body.get_layer("conv1").compute_dtype == "bfloat16"
  assert body.get_layer("fc").compute_dtype == "bfloat16"
  # Activations (and BatchNorm, adds) in float32: faster on CPU.
  assert body.get_layer("relu1").compute_dtype == "float32"
  # Pixel arithmetic and the logits in float32.
  assert model.backbone.get_layer("preprocessing").compute_dtype == "float32"
  assert model.fc2.compute_dtype == "float32"


def test_backbone_policies_are_saved(mixed, tmp_path):
  _, _, model, _ = mixed
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.saving.load_model(path)
  body = loaded.backbone.get_layer("lenet")
  assert body.get_layer("conv1").compute_dtype == "bfloat16"
  assert body.get_layer("relu1").compute_dtype == "float32"
  assert loaded.fc1.compute_dtype == "bfloat16"
  assert loaded.fc2.compute_dtype == "float32"


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_imagenet_backbones_keep_convolutions_in_bfloat16(name):
  with precision.dtype_policy("mixed_bfloat16"):
    backbone = backbones.build_backbone(name, (32, 32, 3))
  policies = {}
  for layer in backbone._flatten_layers(include_self=False):  # pylint: disable=protected-access
    kind = ("BatchNormalization"  # The fused kernel's subclass too.
            if isinstance(layer, keras.layers.BatchNormalization)
            else type(layer).__name__)
    policies.setdefault(kind, set()).add(layer.compute_dtype)
  assert policies["Conv2D"] == {"bfloat16"}
  assert policies["BatchNormalization"] == {"float32"}
  activations = policies.get("Activation", set()) | policies.get("ReLU", set())
  assert activations == {"float32"}
  assert keras.config.dtype_policy().name == "float32"


def test_forward_dtypes(mixed):
  _, _, model, batch = mixed
  f, h, logits = model.embed(batch["source_image"], training=False)
  assert f.dtype in (tf.bfloat16, tf.float32)  # The last backbone layer's.
  assert h.dtype == tf.bfloat16  # fc1 and its BatchNorm compute in bf16.
  assert logits.dtype == tf.float32


@pytest.mark.parametrize("q_mix", [0.0, 1.0])
def test_loss_terms_are_float32_and_finite(mixed, q_mix):
  _, data, model, batch = mixed
  rng = np.random.default_rng(0)
  # Centres near the features, as the per-epoch update sets them.
  f, h, _ = model.embed(batch["target_image"], training=False)
  model.centres_f.assign(np.asarray(tf.cast(f, tf.float32))[:model.num_classes])
  model.centres_h.assign(np.asarray(tf.cast(h, tf.float32))[:model.num_classes])
  model.target_pseudo_labels.assign(rng.integers(
      0, model.num_classes, len(data.target)).astype(np.int32))
  model.source_weights.assign(rng.uniform(size=len(data.source)).astype(
      np.float32))
  model.penalty.assign(0.5)
  model.q_mix.assign(q_mix)
  total, terms, source_logits = model.compute_losses(batch, training=True)
  assert total.dtype == tf.float32 and np.isfinite(float(total))
  assert set(terms) == set(srdc_model.LOSS_TERMS)
  for name, value in terms.items():
    assert value.dtype == tf.float32, name
    assert np.isfinite(float(value)), name
  assert source_logits.dtype == tf.float32
  _assert_state_dtypes(model)


def test_short_fit_keeps_float32_state(mixed):
  settings, data, model, _ = mixed
  model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
  eval_batch = 16
  epoch_state = callbacks_lib.EpochStateCallback(
      pipeline.eval_dataset(data.source, eval_batch, settings.transform),
      pipeline.eval_dataset(data.target, eval_batch, settings.transform),
      epochs=2, kmeans_iterations=settings.kmeans_iterations)
  history = model.fit(
      pipeline.train_dataset(data.source, data.target, settings.batch_size,
                             settings.transform),
      epochs=2, steps_per_epoch=3, callbacks=[epoch_state], verbose=0)
  for name in ("loss",) + srdc_model.LOSS_TERMS:
    assert np.all(np.isfinite(history.history[name])), name
  _assert_state_dtypes(model)
  state = epoch_state.last_state
  for field in ("centres_f", "centres_h", "source_weights",
                "target_centroids_f", "source_centroids_f"):
    assert getattr(state, field).dtype == tf.float32, field
  assert state.pseudo_labels.dtype == tf.int32
  source, target = epoch_state.last_outputs
  for outputs in (source, target):
    assert outputs.f.dtype == outputs.h.dtype == np.float32
    assert outputs.logits.dtype == np.float32
  assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_unknown_precision_is_rejected():
  with pytest.raises(ValueError, match="got 'float16'"):
    run_data.build_model(_settings(precision="float16"),
                         run_data.load_data(_settings()))
  assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("precision_name,flags,has_gpu,slow", [
    ("mixed_bfloat16", {"avx2", "fma"}, False, True),
    ("mixed_bfloat16", {"avx2", "avx512_bf16"}, False, False),
    ("mixed_bfloat16", {"amx_bf16"}, False, False),
    ("mixed_bfloat16", set(), True, False),
    ("float32", set(), False, False),
])
def test_slow_precision_reason(precision_name, flags, has_gpu, slow):
  reason = precision.slow_precision_reason(precision_name, frozenset(flags),
                                           has_gpu=has_gpu)
  assert (reason is not None) == slow
  if slow:
    assert "avx512_bf16" in reason and "--force_precision" in reason


def test_cpu_flags_reads_the_flags_line(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("model name\t: X\nflags\t\t: fpu avx2 amx_bf16\n")
  assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "amx_bf16"}
  assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()
