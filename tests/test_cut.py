"""Training a backbone's top on cached activations (`models.cut`): the cut
point, the cached views, their equality with the whole network, the cache
key, and runs through the binary."""

import json
import os

import keras
import numpy as np
import pytest

import run_testlib
from srdc_tf import run_data
from srdc_tf import run_settings
from srdc_tf.data import domain as domain_lib
from srdc_tf.data import feature_cache
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.models import backbones
from srdc_tf.models import cut
from srdc_tf.models import srdc_model

MOBILENET_SHAPE = (32, 32, 3)


def _batch_norm_paths(variables):
  # MobileNetV2 names its BatchNorm layers "*_BN" and "*_bn".
  return [v.path for v in variables if "_BN" in v.path or "_bn" in v.path]


@pytest.fixture(scope="module")
def mobilenet_split():
  return cut.split_backbone("mobilenet_v2", MOBILENET_SHAPE,
                            trainable_layers=12)


def _model(backbone, input_shape, num_classes=6):
  return srdc_model.SRDCModel(backbone, num_classes=num_classes,
                              input_shape=input_shape, num_source_examples=4,
                              num_target_examples=4, bottleneck_dim=8)


def test_mobilenet_last_block_cut(mobilenet_split):
  assert mobilenet_split.cut_layer == "block_16_expand"
  assert mobilenet_split.top.input.shape[1:] == (1, 1, 160)
  top_layers = {layer.name for layer in mobilenet_split.top.layers}
  assert {"block_16_expand", "block_16_project_BN", "Conv_1",
          "Conv_1_bn"} <= top_layers
  assert "block_15_add" not in top_layers
  # BatchNorm above the cut trains (the paper fine-tunes it); none below.
  assert _batch_norm_paths(mobilenet_split.top.trainable_variables)
  assert not mobilenet_split.bottom.trainable_variables


@pytest.mark.parametrize("name,first", [("mobilenet_v2", "block_16_expand"),
                                        ("lenet", "fc")])
def test_trainable_from_names_the_same_cut(name, first):
  shape = (32, 32, 3) if name == "mobilenet_v2" else (16, 16, 1)
  by_name = cut.split_backbone(name, shape, trainable_from=first)
  by_count = cut.split_backbone(name, shape,
                                trainable_layers=by_name.trainable_layers)
  assert by_count.cut_layer == first
  assert by_name.top.input.shape == by_count.top.input.shape


@pytest.mark.parametrize("kwargs,message", [
    ({"trainable_layers": 13}, "does not cut mobilenet_v2 at a single tensor"),
    ({"trainable_layers": 13}, "--trainable_layers in [1, 2, 3"),
    ({"trainable_layers": 0}, "--trainable_layers=0 must be in [1, 154]"),
    ({"trainable_from": "no_such_layer"}, "'no_such_layer': mobilenet"),
    ({}, "give exactly one of --trainable_layers and --trainable_from"),
    ({"trainable_layers": 12, "trainable_from": "Conv_1"}, "exactly one"),
])
def test_bad_cuts_are_refused_with_the_value(kwargs, message):
  with pytest.raises(ValueError) as error:
    cut.split_backbone("mobilenet_v2", MOBILENET_SHAPE, **kwargs)
  assert message in str(error.value)


def _top_outputs(top, activations, training):
  return np.asarray(top(activations, training=training))


def test_frozen_batch_norm_runs_the_top_in_inference_mode():
  split = cut.split_backbone("mobilenet_v2", MOBILENET_SHAPE,
                             trainable_layers=12)
  activations = np.random.default_rng(0).normal(
      size=(8, *split.top.input.shape[1:])).astype(np.float32)
  # Trained BatchNorm: a training call normalises by the batch and moves
  # the moving averages (so the comparison below is not trivially met).
  assert not np.allclose(_top_outputs(split.top, activations, True),
                         _top_outputs(split.top, activations, False))
  assert backbones.freeze_batch_norm(split.top) == 4
  statistics = [v.numpy().copy() for v in split.top.non_trainable_variables]
  np.testing.assert_array_equal(_top_outputs(split.top, activations, True),
                                _top_outputs(split.top, activations, False))
  for before, after in zip(statistics, split.top.non_trainable_variables):
    np.testing.assert_array_equal(before, after.numpy())
  # Only the four convolutions' kernels still train.
  assert len(split.top.trainable_variables) == 4
  assert not _batch_norm_paths(split.top.trainable_variables)


@pytest.mark.parametrize("mode,trained_batch_norm_variables",
                         [("train", 8), ("frozen", 0)])
def test_backbone_batch_norm_setting_reaches_the_model(
    mode, trained_batch_norm_variables):
  settings = run_settings.RunSettings(
      source="s", target="t", model_dir="m", backbone="mobilenet_v2",
      image_size=32, trainable_layers=12, backbone_batch_norm=mode)
  domain = domain_lib.Domain(
      "s", ("a", "b"), np.array([0, 1]), cached_views=True,
      images=np.zeros((2, 4, 1, 1, 160), np.float32))
  model = run_data.build_model(
      settings, run_data.RunData(domain, domain, domain, frozen_backbone=True))
  trained = _batch_norm_paths(model.backbone.trainable_variables)
  assert len(trained) == trained_batch_norm_variables, trained


def test_resnet50_cuts_only_between_residual_blocks():
  body, _ = backbones.build_body("resnet50", (32, 32, 3))
  valid = cut.valid_trainable_layers(body)
  assert 11 in valid  # conv5_block3 (the last block) and what follows.
  assert body.layers[len(body.layers) - 11].name == "conv5_block3_1_conv"
  assert 5 not in valid  # Inside the block: its skip crosses the cut.


LENET_SHAPE = (16, 16, 3)


@pytest.fixture(scope="module")
def lenet_split():
  # LeNet's random weights keep activations of order 1 (a random deep
  # MobileNetV2's vanish), so equalities below are not trivially met.
  return cut.split_backbone("lenet", LENET_SHAPE, trainable_from="fc")


def _assert_close(actual, expected, what):
  expected = np.asarray(expected)
  assert np.abs(expected).max() > 1e-2, f"{what}: too small to compare"
  np.testing.assert_allclose(actual, expected, rtol=1e-5,
                             atol=1e-5 * np.abs(expected).max(), err_msg=what)


def test_whole_network_model_gives_the_logits_of_the_cached_path(
    lenet_split):
  images = np.random.default_rng(0).uniform(
      0, 255, (5,) + LENET_SHAPE).astype(np.float32)
  model = _model(lenet_split.top, lenet_split.top.input.shape[1:])
  model.centres_f.assign(np.ones(model.centres_f.shape, np.float32))
  model.target_pseudo_labels.assign([1, 2, 3, 4])
  whole = cut.whole_network_model(model, lenet_split.bottom)
  _assert_close(whole(images), model(lenet_split.bottom(images)), "logits")
  assert whole.input_shape_ == LENET_SHAPE
  np.testing.assert_array_equal(whole.centres_f, model.centres_f)
  np.testing.assert_array_equal(whole.target_pseudo_labels, [1, 2, 3, 4])
  # The top's layers are shared, the heads copied.
  assert whole.backbone.get_layer("backbone") is lenet_split.top
  assert whole.fc1 is not model.fc1


def test_copy_head_state_round_trips(lenet_split):
  shape = lenet_split.top.input.shape[1:]
  first, second = (_model(lenet_split.top, shape) for _ in range(2))
  first.source_weights.assign([0.5, 0.25, 1.0, 0.0])
  first.penalty.assign(0.7)
  cut.copy_head_state(first, second)
  for a, b in zip(first.fc2.get_weights(), second.fc2.get_weights()):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(second.source_weights, [0.5, 0.25, 1.0, 0.0])
  assert float(second.penalty) == pytest.approx(0.7)


def _check_views_match_whole_network(split, transform, cache_dir, views=3):
  domain = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=1)
  cached = feature_cache.backbone_features(
      domain, split.bottom, transform, 4, str(cache_dir),
      f"random:below:{split.cut_layer}", views=views)
  cut_shape = tuple(split.top.input.shape[1:])
  assert cached.cached_views and cached.num_views == views
  assert cached.is_features
  assert cached.images.shape == (len(domain), views) + cut_shape
  model = _model(split.top, cut_shape)
  whole = cut.whole_network_model(model, split.bottom)
  for view in range(views):
    images = np.concatenate([x for x, _, _ in pipeline.view_dataset(
        domain, 64, transform, view, feature_cache.VIEW_SEED)])
    _assert_close(model.embed(cached.images[:, view])[0],
                  whole.embed(images)[0], f"features of view {view}")
    _assert_close(model(cached.images[:, view]), whole(images),
                  f"logits of view {view}")
  # The training views differ from the evaluation view and each other.
  for a, b in ((0, 1), (1, 2)):
    assert not np.allclose(cached.images[:, a], cached.images[:, b])


def _augmented_transform(size):
  return transforms.ImageTransform(size, resize_size=size + size // 4,
                                   random_flip=True)


def test_each_cached_view_is_the_whole_network_on_that_view(
    lenet_split, tmp_path):
  _check_views_match_whole_network(lenet_split, _augmented_transform(16),
                                   tmp_path)


SHARED = os.environ.get("SRDC_SHARED_DIR", os.path.join(
    os.path.dirname(run_testlib.REPO), "shared"))
MOBILENET = os.path.join(SHARED, "weights",
                         "mobilenet_v2_imagenet_notop.weights.h5")


@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isfile(MOBILENET),
                    reason=f"no MobileNetV2 ImageNet weights at {MOBILENET}")
def test_pretrained_mobilenet_views_match_the_whole_network(tmp_path):
  split = cut.split_backbone("mobilenet_v2", (64, 64, 3), weights=MOBILENET,
                             trainable_layers=12)
  _check_views_match_whole_network(split, _augmented_transform(64), tmp_path)


def _views_domain(views=4, size=6):
  # Example i, view v holds the number 10 i + v.
  values = (10 * np.arange(size)[:, None] + np.arange(views)[None, :])
  return domain_lib.Domain(
      name="views", class_names=("a", "b"), labels=np.arange(size) % 2,
      images=values[:, :, None].astype(np.float32), cached_views=True)


def test_training_draws_cached_views_and_evaluation_reads_view_0():
  domain = _views_domain()
  batches = list(pipeline.train_dataset(domain, domain, 3, None, seed=5)
                 .take(40))
  seen = np.concatenate([b["source_image"].numpy()[:, 0] for b in batches])
  indices = np.concatenate([b["source_index"].numpy() for b in batches])
  np.testing.assert_array_equal(seen // 10, indices)  # The example's own.
  assert set(seen % 10) == {0, 1, 2, 3}  # Every view is drawn.
  again = list(pipeline.train_dataset(domain, domain, 3, None, seed=5)
               .take(40))
  np.testing.assert_array_equal(
      seen, np.concatenate([b["source_image"].numpy()[:, 0] for b in again]))
  evaluated = np.concatenate([x.numpy()[:, 0] for x, _, _ in
                              pipeline.eval_dataset(domain, 4, None)])
  np.testing.assert_array_equal(evaluated, 10 * np.arange(6))
  subset = domain.select([True, False] * 3)
  assert subset.cached_views and subset.num_views == 4


def test_cache_key_covers_views_and_cut():
  domain = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=1)
  transform = _augmented_transform(32)
  keys = {feature_cache.cache_key(domain, backbone_id, transform, views)
          for backbone_id in ("m:w:below:block_16_expand", "m:w:below:Conv_1",
                              "m:w")
          for views in (None, 1, 4)}
  assert len(keys) == 9


@pytest.mark.parametrize("flags, views", [
    ({"freeze_backbone": True}, run_settings.DEFAULT_FROZEN_VIEWS),
    ({"freeze_backbone": True, "cached_views": 1}, 1),
    ({"freeze_backbone": True, "cached_views": 3}, 3),
    ({"trainable_layers": 2}, run_settings.DEFAULT_CACHED_VIEWS),
    ({"trainable_layers": 2, "cached_views": 0}, 0),
])
def test_views_per_image_default_to_what_the_run_caches(flags, views):
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target",
      model_dir="unused", **flags)
  assert settings.views_per_image == views


@pytest.mark.e2e
@pytest.mark.parametrize("trained_part, heads_only", [
    ("--trainable_layers=2", False),
    # A frozen backbone's cached views train the heads alone.
    ("--freeze_backbone", True),
])
def test_a_run_on_cached_views_exports_the_whole_network(
    tmp_path, trained_part, heads_only):
  model_dir, export_dir = tmp_path / "run", tmp_path / "export"
  result = run_testlib.train(
      *run_testlib.TINY_RUN, "--epochs=2", trained_part,
      "--cached_views=2", "--random_translate=2", f"--model_dir={model_dir}",
      f"--export_dir={export_dir}")
  assert result.returncode == 0, result.stderr[-4000:]
  cache = [name for name in os.listdir(model_dir / "feature_cache")
           if name.endswith(".npy")]
  assert len(cache) == 2, cache  # Source and target, 2 views each.
  for name in cache:
    assert np.load(model_dir / "feature_cache" / name).shape[1] == 2, name
  assert (model_dir / "backbone.keras").exists() == heads_only
  with open(model_dir / "run_info.json") as f:
    trained = json.load(f)["target_accuracy"]
  # The export and model.keras take raw images and score as the run did.
  for flag in (f"--saved_model={export_dir}/1", f"--model_dir={model_dir}"):
    scored = run_testlib.run_module(
        "srdc_tf.evaluate", flag, "--target=synthetic:target",
        "--synthetic_examples_per_class=8", "--seed=0",
        f"--output_dir={tmp_path / 'evaluation'}")
    assert scored.returncode == 0, scored.stderr[-4000:]
    assert f"{trained:.4f}" in scored.stdout, (trained, scored.stdout)


class _Features:
  """What `run_data.build_model` reads of a domain of cached outputs."""

  def __init__(self, rows, num_classes=3):
    self.images = np.zeros(rows.shape, np.float32)
    self.num_classes = num_classes
    self.cached_views = True

  def __len__(self):
    return len(self.images)


def test_one_seed_starts_a_trained_top_and_a_frozen_backbone_from_one_head(
    tmp_path):
  # A pretrained top's own initialisers would otherwise move fc1's and
  # fc2's draws, and the two settings would not compare paired.
  weights = str(tmp_path / "mobilenet.weights.h5")
  backbones.build_body("mobilenet_v2", MOBILENET_SHAPE,
                       fused_batch_norm=False)[0].save_weights(weights)
  common = dict(source="synthetic:source", target="synthetic:target",
                model_dir=str(tmp_path), backbone="mobilenet_v2",
                weights=weights, image_size=MOBILENET_SHAPE[0])
  top_input = cut.split_backbone(
      "mobilenet_v2", MOBILENET_SHAPE, trainable_layers=12).top.input.shape
  frozen_top = backbones.build_backbone("mobilenet_v2", MOBILENET_SHAPE)
  runs = {
      "trained top": (run_settings.RunSettings(trainable_layers=12, **common),
                      (5, 4) + tuple(top_input[1:]), None),
      "frozen": (run_settings.RunSettings(freeze_backbone=True, **common),
                 (5, 4, int(frozen_top.output.shape[-1])), frozen_top),
  }
  heads = {}
  for name, (settings, rows, frozen) in runs.items():
    keras.utils.set_random_seed(7)
    data = run_data.RunData(_Features(np.empty(rows)),
                            _Features(np.empty(rows)), None,
                            frozen_backbone=frozen or object())
    model = run_data.build_model(settings, data)
    assert (model.backbone is None) == (name == "frozen")
    heads[name] = [model.fc1.kernel.numpy(), model.fc2.kernel.numpy()]
  for trained, frozen in zip(heads["trained top"], heads["frozen"]):
    np.testing.assert_array_equal(trained, frozen)
