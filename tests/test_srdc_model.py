"""SRDCModel: the six loss terms against a numpy transcription of SRDC.md,
the coupled L2 and learning-rate split of a step, saving, argument checks."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from srdc_tf.models import build_backbone
from srdc_tf.models import SRDCModel

K, D, N = 3, 6, 5


def _log_softmax(x):
  x = x - x.max(axis=1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _kernel(z, mu):
  # Student-t with alpha = 1, by explicit differences.
  return 1.0 / (1.0 + ((z[:, None, :] - mu[None]) ** 2).sum(-1))


def _q(p, beta, pseudo):
  q = p / np.sqrt(p.sum(axis=0))
  q /= q.sum(axis=1, keepdims=True)
  return (1 - beta) * np.eye(p.shape[1])[pseudo] + beta * q


def _numpy_losses(model, data):
  """SRDC.md's losses, computed from the model's own layer outputs."""
  def forward(x):
    f, h, logits = model.embed(x, training=True)
    return np.asarray(f), np.asarray(h), np.asarray(logits)

  f_s, h_s, out_s = forward(data["source_image"])
  f_t, h_t, out_t = forward(data["target_image"])
  mu_f, mu_h = np.asarray(model.centres_f), np.asarray(model.centres_h)
  w = np.asarray(model.source_weights)[data["source_index"]]
  pseudo = np.asarray(model.target_pseudo_labels)[data["target_index"]]
  y = data["source_label"]
  beta = float(model.q_mix)

  def source(scores):
    return np.mean(-w * _log_softmax(scores)[np.arange(len(y)), y])

  def diversity(scores):
    mean = np.exp(_log_softmax(scores)).mean(axis=0)
    return float((mean * np.log(mean)).sum() + np.log(len(mean)))

  def target(scores):
    p = np.exp(_log_softmax(scores))
    return np.mean(-(_q(p, beta, pseudo) * _log_softmax(scores)).sum(1))

  return {
      "source_output_loss": source(out_s),
      "source_f_loss": source(_kernel(f_s, mu_f)),
      "source_h_loss": source(_kernel(h_s, mu_h)),
      "target_output_loss": target(out_t),
      "target_f_loss": target(_kernel(f_t, mu_f)),
      "target_h_loss": target(_kernel(h_t, mu_h)),
      "target_diversity_loss": diversity(out_t),
  }


def _model(**kwargs):
  keras.utils.set_random_seed(1)
  model = SRDCModel(None, num_classes=K, input_shape=(D,),
                    num_source_examples=N, num_target_examples=N,
                    bottleneck_dim=4, **kwargs)
  rng = np.random.default_rng(0)
  model.centres_f.assign(rng.normal(size=(K, D)).astype("float32"))
  model.centres_h.assign(rng.normal(size=(K, 4)).astype("float32"))
  model.source_weights.assign([0.2, 1.0, 0.5, 0.9, 0.7])
  model.target_pseudo_labels.assign([2, 0, 1, 1, 0])
  model.penalty.assign(0.6)
  model.q_mix.assign(0.5)
  return model


def _batch():
  rng = np.random.default_rng(3)
  return {"source_image": rng.normal(size=(4, D)).astype("float32"),
          "source_label": np.array([0, 2, 1, 2]),
          "source_index": np.array([4, 0, 2, 1]),
          "target_image": rng.normal(size=(4, D)).astype("float32"),
          "target_index": np.array([1, 3, 0, 2])}


@pytest.mark.parametrize("detach_q", [False, True])
def test_loss_terms_match_numpy(detach_q):
  model, data = _model(detach_q=detach_q, weight_decay=0.0), _batch()
  total, terms, _ = model.compute_losses(data)
  expected = _numpy_losses(model, data)
  for name, value in expected.items():
    np.testing.assert_allclose(float(terms[name]), value, rtol=1e-5,
                               err_msg=name)
  lam = 0.6
  assert float(terms["target_diversity_loss"]) > 0
  want = (expected["source_output_loss"]
          + lam * (expected["target_output_loss"] + expected["target_f_loss"]
                   + expected["target_h_loss"])
          + lam * (expected["source_f_loss"] + expected["source_h_loss"]))
  np.testing.assert_allclose(float(total), want, rtol=1e-5)


@pytest.mark.parametrize("switch, dropped", [
    ({"feature_clustering": False}, ("target_f_loss", "target_h_loss")),
    ({"source_regularization": False}, ("source_f_loss", "source_h_loss")),
    ({"source_only": True}, ("target_output_loss", "target_f_loss",
                             "target_h_loss", "source_f_loss",
                             "source_h_loss")),
])
def test_ablation_switches_drop_their_terms(switch, dropped):
  model, data = _model(weight_decay=0.0, **switch), _batch()
  total, _, _ = model.compute_losses(data)
  expected = _numpy_losses(model, data)
  lam = 0.6
  weights = {"source_output_loss": 1.0}
  weights.update({name: lam for name in expected if name not in weights})
  weights["target_diversity_loss"] = 0.0  # diversity_weight defaults to 0.
  want = sum(weights[n] * v for n, v in expected.items() if n not in dropped)
  np.testing.assert_allclose(float(total), want, rtol=1e-5)


@pytest.mark.parametrize("diversity_weight", [0.5, 2.0])
def test_diversity_term_enters_the_total_ramped_with_lambda(diversity_weight):
  data = _batch()
  total, terms, _ = _model(weight_decay=0.0,
                           diversity_weight=diversity_weight
                           ).compute_losses(data)
  paper_total, _, _ = _model(weight_decay=0.0).compute_losses(data)
  np.testing.assert_allclose(
      float(total), float(paper_total)
      + 0.6 * diversity_weight * float(terms["target_diversity_loss"]),
      rtol=1e-5)


@pytest.mark.parametrize("source_only", [False, True])
def test_source_label_smoothing_acts_on_the_output_term_only(source_only):
  eps = 0.2
  model = _model(weight_decay=0.0, source_only=source_only,
                 source_label_smoothing=eps)
  data = _batch()
  total, terms, _ = model.compute_losses(data)
  _, plain_terms, _ = _model(weight_decay=0.0, source_only=source_only
                             ).compute_losses(data)
  f_s, h_s, out_s = (np.asarray(t) for t in model.embed(
      data["source_image"], training=True))
  w = np.asarray(model.source_weights)[data["source_index"]]
  y = data["source_label"]
  log_p = _log_softmax(out_s)
  smoothed = (1 - eps) * np.eye(K)[y] + eps / K
  np.testing.assert_allclose(float(terms["source_output_loss"]),
                             np.mean(-w * (smoothed * log_p).sum(1)),
                             rtol=1e-5)
  assert float(terms["source_output_loss"]) != pytest.approx(
      float(plain_terms["source_output_loss"]), rel=1e-3)
  for name in ("source_f_loss", "source_h_loss", "target_output_loss"):
    np.testing.assert_allclose(float(terms[name]), float(plain_terms[name]),
                               rtol=1e-6, err_msg=name)


def test_confidence_threshold_drops_unsure_target_samples_at_every_level():
  data = _batch()
  plain = _model(weight_decay=0.0)
  _, plain_terms, _ = plain.compute_losses(data)
  probs = tf.nn.softmax(plain.embed(data["target_image"], training=True)[2])
  confidence = np.sort(np.asarray(tf.reduce_max(probs, axis=1)))
  # Between the two least confident samples: exactly one is dropped.
  threshold = float(confidence[:2].mean())
  model = _model(weight_decay=0.0, target_confidence_threshold=threshold)
  _, terms, _ = model.compute_losses(data)
  for name in ("target_output_loss", "target_f_loss", "target_h_loss"):
    assert 0.0 < float(terms[name]) < float(plain_terms[name]), name
  # The output term by hand: q over the whole batch, the mean over the whole
  # batch, the dropped sample's loss set to 0.
  out_t = np.asarray(model.embed(data["target_image"], training=True)[2])
  p = np.exp(_log_softmax(out_t))
  pseudo = np.asarray(model.target_pseudo_labels)[data["target_index"]]
  per_sample = -(_q(p, float(model.q_mix), pseudo)
                 * _log_softmax(out_t)).sum(1)
  np.testing.assert_allclose(float(terms["target_output_loss"]),
                             np.mean(per_sample * (p.max(1) >= threshold)),
                             rtol=1e-5)
  for name in ("source_output_loss", "source_f_loss", "source_h_loss"):
    np.testing.assert_allclose(float(terms[name]), float(plain_terms[name]),
                               rtol=1e-6, err_msg=name)
  # Above every sample's confidence: no target term is left.
  _, none_left, _ = _model(weight_decay=0.0, target_confidence_threshold=min(
      0.999, float(confidence[-1]) + 1e-3)).compute_losses(data)
  for name in ("target_output_loss", "target_f_loss", "target_h_loss"):
    assert float(none_left[name]) == 0.0, name


def test_gradient_flows_through_q_unless_detached():
  data = _batch()
  grads = {}
  for detach in (False, True):
    model = _model(detach_q=detach, weight_decay=0.0)
    with tf.GradientTape() as tape:
      _, terms, _ = model.compute_losses(data)
      loss = terms["target_output_loss"]
    grads[detach] = np.asarray(
        tape.gradient(loss, model.fc2.kernel))
  assert np.abs(grads[False] - grads[True]).max() > 1e-4


@pytest.mark.parametrize("multiplier", [0.1, 1.0])
def test_step_is_sgd_with_coupled_l2_and_slow_centres(multiplier):
  """w' = w - lr * m * (dL/dw + wd * w), m the variable's lr factor."""
  lr, wd = 0.5, 0.01
  data = _batch()
  model = _model(weight_decay=wd, backbone_lr_multiplier=multiplier)
  reference = _model(weight_decay=0.0, backbone_lr_multiplier=multiplier)
  with tf.GradientTape() as tape:
    loss, _, _ = reference.compute_losses(data)
  variables = reference.trainable_variables
  grads = tape.gradient(loss, variables)
  before = [np.asarray(v) for v in model.trainable_variables]
  model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=False)
  model.train_step(data)
  for var, old, grad in zip(model.trainable_variables, before, grads):
    factor = multiplier if "centres" in var.path else 1.0
    want = old - lr * factor * (np.asarray(grad) + wd * old)
    np.testing.assert_allclose(np.asarray(var), want, rtol=1e-4, atol=1e-6,
                               err_msg=var.path)


def test_keras_round_trip_keeps_tables_and_outputs(tmp_path):
  backbone = build_backbone("lenet", (28, 28, 1))
  model = SRDCModel(backbone, num_classes=K, input_shape=(28, 28, 1),
                    num_source_examples=7, num_target_examples=9,
                    beta=0.5, detach_q=True, diversity_weight=0.25,
                    source_label_smoothing=0.1,
                    target_confidence_threshold=0.9)
  model.target_pseudo_labels.assign(np.arange(9) % K)
  model.source_weights.assign(np.linspace(0, 1, 7))
  path = str(tmp_path / "model.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  images = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1))
  np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5)
  np.testing.assert_array_equal(loaded.target_pseudo_labels,
                                np.arange(9) % K)
  np.testing.assert_allclose(loaded.source_weights, np.linspace(0, 1, 7))
  assert loaded.get_config()["beta"] == 0.5
  assert loaded.get_config()["detach_q"]
  assert loaded.get_config()["diversity_weight"] == 0.25
  assert loaded.get_config()["source_label_smoothing"] == 0.1
  assert loaded.get_config()["target_confidence_threshold"] == 0.9


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 0}, "num_classes must be > 0, got 0"),
    ({"beta": 1.5}, "beta must be in [0, 1], got 1.5"),
    ({"alpha": 0.0}, "alpha must be > 0, got 0.0"),
    ({"num_target_examples": -3}, "num_target_examples must be > 0, got -3"),
    ({"diversity_weight": -1.0}, "diversity_weight must be >= 0, got -1.0"),
    ({"diversity_floor": 1.5}, "diversity_floor must be in [0, 1], got 1.5"),
    ({"source_label_smoothing": 1.0},
     "source_label_smoothing must be in [0, 1), got 1.0"),
    ({"target_confidence_threshold": -0.5},
     "target_confidence_threshold must be in [0, 1), got -0.5"),
    ({"backbone_frozen_epochs": -1}, "backbone_frozen_epochs must be >= 0, "
     "got -1"),
])
def test_bad_arguments_name_the_value(kwargs, message):
  args = dict(backbone=None, num_classes=K, input_shape=(D,),
              num_source_examples=N, num_target_examples=N)
  args.update(kwargs)
  with pytest.raises(ValueError, match=re.escape(message)):
    SRDCModel(**args)


@pytest.mark.parametrize("head_init", ["glorot", "pytorch"])
def test_head_init_ranges(head_init):
  keras.utils.set_random_seed(2)
  model = SRDCModel(None, num_classes=K, input_shape=(400,),
                    num_source_examples=N, num_target_examples=N,
                    bottleneck_dim=100, head_init=head_init)
  for layer, fan_in, fan_out in ((model.fc1, 400, 100), (model.fc2, 100, K)):
    kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
    if head_init == "glorot":
      limit = np.sqrt(6.0 / (fan_in + fan_out))
      np.testing.assert_array_equal(bias, 0.0)
    else:  # PyTorch's nn.Linear: kernel and bias in +-1/sqrt(fan_in).
      limit = fan_in ** -0.5
      assert np.all(np.abs(bias) <= limit) and np.all(bias != 0)
    assert np.all(np.abs(kernel) <= limit)
    # Uniform on [-limit, limit] has standard deviation limit / sqrt(3).
    np.testing.assert_allclose(np.std(kernel), limit / np.sqrt(3), rtol=0.1)
  assert model.get_config()["head_init"] == head_init


def test_rejects_unknown_head_init():
  with pytest.raises(ValueError, match="'he'"):
    SRDCModel(None, num_classes=K, input_shape=(D,), num_source_examples=N,
              num_target_examples=N, head_init="he")


def _model_with_batch_norm_backbone(**kwargs):
  keras.utils.set_random_seed(2)
  inputs = keras.Input((D,))
  x = keras.layers.Dense(5, name="dense")(inputs)
  x = keras.layers.BatchNormalization(name="bn")(x)
  backbone = keras.Model(inputs, x, name="backbone")
  model = SRDCModel(backbone, num_classes=K, input_shape=(D,),
                    num_source_examples=N, num_target_examples=N,
                    bottleneck_dim=4, backbone_lr_multiplier=0.5, **kwargs)
  model.penalty.assign(0.6)
  model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
  return model


def _backbone_state(model):
  return [np.asarray(v) for v in model.backbone.weights]


@pytest.mark.parametrize("trains", [0.0, 1.0])
def test_backbone_frozen_epochs_hold_the_backbone_until_released(trains):
  model = _model_with_batch_norm_backbone(backbone_frozen_epochs=2)
  model.backbone_trains.assign(trains)
  before, head_before = _backbone_state(model), np.asarray(model.fc2.kernel)
  model.train_step(_batch())
  after = _backbone_state(model)
  # The heads train either way.
  assert np.abs(np.asarray(model.fc2.kernel) - head_before).max() > 1e-4
  changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
  # Held: no weight and no BatchNorm statistic moves. Released: every one
  # does (the dense layer, BatchNorm's scale, offset and statistics).
  assert changed == [bool(trains)] * len(before), changed


def test_released_backbone_steps_like_a_model_without_the_option():
  data = _batch()
  held = _model_with_batch_norm_backbone(backbone_frozen_epochs=1)
  held.backbone_trains.assign(1.0)
  plain = _model_with_batch_norm_backbone()
  held.train_step(data)
  plain.train_step(data)
  for got, want in zip(held.trainable_variables, plain.trainable_variables):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6,
                               err_msg=got.path)


def test_backbone_release_callback_sets_the_switch_per_epoch(tmp_path):
  from srdc_tf.callbacks import schedules  # pylint: disable=g-import-not-at-top
  model = _model_with_batch_norm_backbone(backbone_frozen_epochs=2)
  release = schedules.BackboneRelease()
  release.set_model(model)
  for epoch, want in ((0, 0.0), (1, 0.0), (2, 1.0), (5, 1.0), (1, 0.0)):
    release.on_epoch_begin(epoch)
    assert float(model.backbone_trains) == want, epoch
  # Saved and loaded with the option and the switch.
  path = str(tmp_path / "model.keras")
  release.on_epoch_begin(3)
  model.save(path)
  loaded = keras.models.load_model(path)
  assert loaded.get_config()["backbone_frozen_epochs"] == 2
  assert float(loaded.backbone_trains) == 1.0
