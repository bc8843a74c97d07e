"""Bad input stops a run up front with a message that names the culprit:
flags, flagfiles, data folders and lists, image files, weights files; and a
loss that becomes NaN stops the run, naming the epoch and step, with the
last good checkpoint intact."""

import json
import os

import keras
import numpy as np
from PIL import Image
import pytest

import run_testlib
from srdc_tf import run_data
from srdc_tf import run_directory
from srdc_tf import run_settings
from srdc_tf import runner
from srdc_tf.callbacks import backup as backup_lib
from srdc_tf.callbacks import divergence
from srdc_tf.data import sources
from srdc_tf.data import validation


def _image_folder(root, classes, per_class=4, size=16):
  rng = np.random.default_rng(len(str(root)))
  for name in classes:
    os.makedirs(root / name, exist_ok=True)
    for i in range(per_class):
      Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                      ).save(root / name / f"{i}.png")
  return root


# === Flags ===


def test_unknown_flag_in_a_flagfile_names_the_file_and_line(tmp_path):
  flagfile = tmp_path / "task.cfg"
  flagfile.write_text("--source=synthetic:source\n# a comment\n"
                      "--bogus_rate=3\n")
  result = run_testlib.train(f"--flagfile={flagfile}",
                             "--target=synthetic:target", "--model_dir=/tmp")
  assert result.returncode != 0
  assert (f"Unknown command line flag 'bogus_rate' (in {flagfile}:3)"
          in result.stderr)


@pytest.mark.parametrize("flag", ["--batch_size=0", "--batch_size=-8",
                                  "--epochs=0", "--epochs=-1",
                                  "--min_image_side=0"])
def test_non_positive_sizes_and_counts_are_refused(flag, tmp_path):
  result = run_testlib.train(*run_testlib.TINY_RUN, flag,
                             f"--model_dir={tmp_path}")
  name, value = flag.split("=")
  assert result.returncode != 0
  assert f"{name} must be > 0, got {value}" in result.stderr


def test_unknown_backbone_is_refused(tmp_path):
  result = run_testlib.train(*run_testlib.TINY_RUN, "--backbone=lenet5",
                             f"--model_dir={tmp_path}")
  assert result.returncode != 0
  assert "--backbone must be one of" in result.stderr
  assert "'lenet5'" in result.stderr


@pytest.mark.parametrize("flags, message", [
    (["--backbone_lr_multiplier=-0.1"],
     "--backbone_lr_multiplier must be >= 0, got -0.1"),
    (["--weight_decay=-1e-4"], "--weight_decay must be >= 0, got -0.0001"),
    (["--diversity_weight=-1"], "--diversity_weight must be >= 0, got -1.0"),
    (["--diversity_floor=2"], "--diversity_floor must be in [0, 1], got 2.0"),
    (["--source_label_smoothing=1"],
     "--source_label_smoothing must be in [0, 1), got 1.0"),
    (["--target_confidence_threshold=1"],
     "--target_confidence_threshold must be in [0, 1), got 1.0"),
    (["--warmup_epochs=3", "--epochs=2"],
     "--warmup_epochs must be in [1, --epochs=2], got 3"),
    (["--refinement_epochs=2", "--epochs=3"],
     "--refinement_epochs must be in [0, --epochs - --warmup_epochs = 2), "
     "so that SRDC's own clustering runs first; got 2"),
    (["--refinement_epochs=-1"],
     "--refinement_epochs must be in [0, --epochs - --warmup_epochs = 199)"),
    (["--refinement_neighbours=0"],
     "--refinement_neighbours must be >= 1, got 0"),
    (["--momentum=1.0"], "--momentum must be in [0, 1), got 1.0"),
    (["--lenet_dropout=1"], "--lenet_dropout must be in [0, 1), got 1.0"),
    (["--lenet_dropout=0.5", "--backbone=mobilenet_v2", "--image_size=32"],
     "--lenet_dropout=0.5 needs --backbone=lenet, got "
     "--backbone=mobilenet_v2"),
    (["--lenet_dropout=0.5", "--freeze_backbone"],
     "--lenet_dropout=0.5 needs the whole LeNet trained"),
    (["--lenet_dropout=0.5", "--trainable_layers=2"],
     "--lenet_dropout=0.5 needs the whole LeNet trained"),
    (["--backbone_batch_norm=frozen"], "--backbone_batch_norm=frozen has no "
     "effect with --backbone=lenet"),
    (["--backbone_batch_norm=typo", "--backbone=mobilenet_v2",
      "--image_size=32"], "--backbone_batch_norm=typo: value should be one of"),
    (["--weights=imagenet"], "--weights=imagenet is not available for "
     "--backbone=lenet"),
    (["--image_size=12"], "--image_size=12 is too small for --backbone=lenet, "
     "which needs at least 16"),
    (["--image_size=24", "--backbone=mobilenet_v2"],
     "--image_size=24 is too small for --backbone=mobilenet_v2"),
    (["--resize_size=12"], "--resize_size=12 is smaller than --image_size=16"),
    (["--freeze_backbone", "--cached_views=0"],
     "--cached_views=0 needs --trainable_layers or --trainable_from"),
])
def test_bad_settings_are_refused_before_any_work(flags, message, tmp_path):
  model_dir = tmp_path / "run"
  result = run_testlib.train(*run_testlib.TINY_RUN, *flags,
                             f"--model_dir={model_dir}")
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr
  assert not model_dir.exists()


@pytest.mark.parametrize("binary, args", [
    ("srdc_tf.train", ["--source=synthetic:source", "--target=synthetic:target",
                       "--model_dir=/tmp/unused", "--epochs=0"]),
    ("srdc_tf.report", ["--run_dirs=/nonexistent/runs", "--output=/tmp/r"]),
])
def test_a_usage_error_is_one_short_message(binary, args):
  result = run_testlib.run_module(binary, *args)
  assert result.returncode == 1
  lines = [line for line in result.stderr.splitlines()
           if line.startswith(("error:", "(see"))]
  assert lines and lines[0].startswith("error: "), result.stderr
  assert "--help for the flags" in result.stderr
  # Not the flag help first: the message is what a user sees.
  assert len(result.stderr.splitlines()) < 10, result.stderr


@pytest.mark.parametrize("flag", ["model_dir", "export_dir",
                                  "feature_cache_dir"])
def test_a_file_where_a_folder_is_wanted_is_refused(flag, tmp_path):
  path = tmp_path / "a_file"
  path.write_text("keep me")
  args = {"model_dir": str(tmp_path / "run"), flag: str(path)}
  result = run_testlib.train(*run_testlib.TINY_RUN,
                             *[f"--{k}={v}" for k, v in args.items()])
  assert result.returncode != 0
  assert f"--{flag}='{path}' is a file, not a folder" in result.stderr
  assert path.read_text() == "keep me"


@pytest.mark.e2e
def test_weights_file_of_another_architecture_is_refused(tmp_path):
  other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
  weights = tmp_path / "dense.weights.h5"
  other.save_weights(weights)
  result = run_testlib.train(*run_testlib.TINY_RUN, f"--weights={weights}",
                             f"--model_dir={tmp_path / 'run'}")
  assert result.returncode != 0
  assert f"--weights='{weights}' does not fit backbone 'lenet'" in (
      result.stderr)
  assert not os.path.exists(tmp_path / "run" / "model.keras")


# === Data folders and lists ===


def test_class_missing_from_the_target_is_named(tmp_path):
  source = _image_folder(tmp_path / "source", ["bike", "cup", "pen"])
  target = _image_folder(tmp_path / "target", ["bike", "cup"])
  settings = run_settings.RunSettings(source=str(source), target=str(target),
                                      model_dir=str(tmp_path / "run"))
  with pytest.raises(ValueError) as error:
    run_data.load_data(settings)
  message = str(error.value)
  assert f"source {str(source)!r} and target {str(target)!r}" in message
  assert "['pen'] only in the source, absent from the target" in message
  assert "--shared_classes" in message
  data = run_data.load_data(settings.replace(shared_classes=True))
  assert data.source.class_names == ("bike", "cup")


def test_empty_class_folder_is_named(tmp_path):
  root = _image_folder(tmp_path / "domain", ["bike", "cup"])
  os.makedirs(root / "pen")
  with pytest.raises(ValueError, match=r"class folder '.*/pen' is empty"):
    sources.load_domain(str(root))


def test_image_list_outside_its_root_missing_or_duplicate(tmp_path):
  root = _image_folder(tmp_path / "images", ["bike", "cup"])
  escape = tmp_path / "escape.txt"
  escape.write_text("bike/0.png 0\n../secret.png 1\n")
  with pytest.raises(ValueError, match=r"escape.txt:2: '../secret.png' points "
                     r"outside the root"):
    sources.load_domain(str(escape), list_root=str(root))
  listing = tmp_path / "list.txt"
  listing.write_text("bike/0.png 0\nbike/1.png 0\ncup/0.png 1\n"
                     "cup/9.png 1\nbike/0.png 0\n")
  with pytest.raises(validation.BadImagesError) as error:
    sources.load_domain(str(listing), list_root=str(root))
  message = str(error.value)
  assert f"{root / 'cup' / '9.png'}: no such file" in message
  assert f"{root / 'bike' / '0.png'}: listed 2 times" in message
  domain = sources.load_domain(str(listing), list_root=str(root),
                               skip_bad_images=True)
  assert len(domain) == 3 and len(domain.skipped) == 2


def test_images_in_sub_folders_of_a_class_count(tmp_path):
  root = _image_folder(tmp_path / "domain", ["bike", "cup"], per_class=2)
  _image_folder(root / "bike" / "side" / "far", ["deeper"], per_class=2)
  _image_folder(root / "cup", [".thumbnails"], per_class=1)  # Hidden.
  domain = sources.load_domain(str(root))
  assert domain.class_names == ("bike", "cup")
  assert [os.path.relpath(p, root) for p in domain.paths] == [
      "bike/0.png", "bike/1.png", "bike/side/far/deeper/0.png",
      "bike/side/far/deeper/1.png", "cup/0.png", "cup/1.png"]
  np.testing.assert_array_equal(domain.labels, [0, 0, 0, 0, 1, 1])


@pytest.mark.parametrize("target", ["..", ".", "../..", "../../cup"])
def test_a_symbolic_link_loop_is_named(tmp_path, target):
  root = _image_folder(tmp_path / "domain", ["bike", "cup"], per_class=2)
  os.makedirs(root / "bike" / "side")
  link = root / "bike" / "side" / "loop"
  os.symlink(target, link)
  if target == "../../cup":  # Not a loop: the same files twice.
    with pytest.raises(validation.BadImagesError, match="listed 2 times"):
      sources.load_domain(str(root))
    return
  with pytest.raises(ValueError, match=f"symbolic link loop: '{link}' leads "
                     "to '.*', a folder that contains it"):
    sources.load_domain(str(root))


def test_a_file_name_that_is_not_utf8_is_read(tmp_path):
  root = _image_folder(tmp_path / "domain", ["bike", "cup"], per_class=2)
  os.rename(os.fsencode(root / "cup" / "0.png"),
            os.fsencode(root / "cup") + b"/caf\xe9.png")
  domain = sources.load_domain(str(root))
  assert os.fsencode(domain.paths[3]) == os.fsencode(root / "cup") + (
      b"/caf\xe9.png")
  from srdc_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import transforms  # pylint: disable=g-import-not-at-top
  images, labels, _ = next(iter(pipeline.eval_dataset(
      domain, 8, transforms.ImageTransform(16))))
  assert images.shape == (4, 16, 16, 3) and list(labels) == [0, 0, 1, 1]


@pytest.mark.parametrize("contents, message", [
    (b"bike/0.png 0\ncup/0.png 1000000000\n",
     r"list.txt:2: label 1000000000 is outside \[0, 100000\)"),
    (b"bike/0.png 0\ncup/0.png -3\n", r"list.txt:2: label -3 is outside"),
    (b"bike/0.png 0\ncup/0.png 1.5\n",
     r"list.txt:2: the label '1.5' is not an integer"),
    (b"bike/0.png \xc2\xb2\n", r"list.txt:1: the label '\xb2' is not an "
     "integer"),
    (b"bike/0.png 0\ncaf\xe9/0.png 1\n",
     r"list.txt:2: not valid UTF-8 \(byte 0xe9 at column 4 of "
     r"b'caf\\xe9/0.png 1'\); save the list as UTF-8"),
    ("bike/0.png 0\n".encode("utf-16"), "list.txt: the list is UTF-16"),
], ids=["huge", "negative", "float", "superscript", "latin1", "utf16"])
def test_bad_image_list_lines_are_named(tmp_path, contents, message):
  _image_folder(tmp_path, ["bike", "cup"], per_class=1)
  listing = tmp_path / "list.txt"
  listing.write_bytes(contents)
  with pytest.raises(ValueError, match=message):
    sources.load_domain(str(listing))


def test_an_image_list_with_a_utf8_byte_order_mark_is_read(tmp_path):
  _image_folder(tmp_path, ["bike", "cup"], per_class=1)
  listing = tmp_path / "list.txt"
  listing.write_bytes(b"\xef\xbb\xbfbike/0.png 0\r\ncup/0.png 1\r\n")
  domain = sources.load_domain(str(listing))
  assert domain.class_names == ("bike", "cup") and len(domain) == 2


@pytest.mark.e2e
def test_bad_image_stops_the_run_before_training_or_is_skipped(tmp_path):
  source = _image_folder(tmp_path / "source", ["bike", "cup"])
  target = _image_folder(tmp_path / "target", ["bike", "cup"])
  good = (source / "cup" / "0.png").read_bytes()
  (source / "cup" / "broken.png").write_bytes(good[:len(good) // 2])
  (target / "bike" / "empty.jpg").write_bytes(b"")
  args = [f"--source={source}", f"--target={target}", "--image_size=16",
          "--bottleneck_dim=8", "--batch_size=4", "--epochs=1",
          "--steps_per_epoch=2", "--export_dir=", "--verbose=0"]
  refused = run_testlib.train(*args, f"--model_dir={tmp_path / 'refused'}")
  assert refused.returncode != 0
  assert (f"{source / 'cup' / 'broken.png'}: corrupt or truncated PNG file"
          in refused.stderr)
  assert not os.path.exists(tmp_path / "refused" / "metrics.csv")

  model_dir = tmp_path / "skipped"
  skipped = run_testlib.train(*args, "--skip_bad_images",
                              f"--model_dir={model_dir}")
  assert skipped.returncode == 0, skipped.stderr[-3000:]
  assert "Skipped 2 bad image file(s)" in skipped.stdout
  assert f"{target / 'bike' / 'empty.jpg'}: empty file (0 bytes)" in (
      skipped.stderr)
  summary = json.loads((model_dir / "summary.json").read_text())
  assert summary["srdc"]["skipped_images"] == {"source": 1, "target": 1}
  info = json.loads((model_dir / "run_info.json").read_text())
  assert info["skipped_image_files"]["source"] == [{
      "path": str(source / "cup" / "broken.png"),
      "problem": info["skipped_image_files"]["source"][0]["problem"]}]


# === A loss that becomes NaN ===


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
  settings = run_settings.RunSettings(
      source="synthetic:source", target="synthetic:target",
      model_dir=str(tmp_path), synthetic_examples_per_class=4, image_size=16,
      bottleneck_dim=8, batch_size=8, epochs=2, steps_per_epoch=4,
      lr=1e12, checkpoint_every_steps=1, export_dir="", verbose=0)
  data = run_data.load_data(settings)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with pytest.raises(divergence.TrainingDivergedError) as error:
    runner.run(settings, data, tf.distribute.get_strategy())
  message = str(error.value)
  assert "became" in message and "epoch " in message and "step " in message
  assert "Last good checkpoint:" in message and "lower --lr" in message
  assert not os.path.exists(tmp_path / "model.keras")
  found = run_directory.checkpoints(str(tmp_path / "backup"))
  assert found and found[0][1] in message
  # The last good checkpoint loads, and holds numbers.
  model = run_data.build_model(settings, data)
  model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
  model.optimizer.build(model.trainable_variables)
  model.load_weights(os.path.join(found[0][1], backup_lib.STATE_FILE))
  assert all(np.all(np.isfinite(v.numpy())) for v in model.weights
             if v.dtype == "float32")


# === Run files: folders that are files, damaged model and JSON files ===


def _damaged_run(folder, damage):
  """A run directory with `model.keras`, `classes.json` and
  `transform.json`, one of them damaged as `damage` says."""
  os.makedirs(folder, exist_ok=True)
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
  model.save(folder / "model.keras")
  (folder / "classes.json").write_text('["bike", "cup"]')
  (folder / "transform.json").write_text('{"image_size": 16}')
  if damage == "truncated_model":
    data = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(data[:len(data) // 2])
    return "model.keras' is truncated or corrupt: not a complete .keras archive"
  name = {"corrupt_classes": "classes.json",
          "corrupt_transform": "transform.json"}[damage]
  (folder / name).write_text('["bike", "cu')
  return f"{name}' is truncated or corrupt (not valid JSON"


@pytest.mark.parametrize("binary", ["srdc_tf.export", "srdc_tf.evaluate"])
@pytest.mark.parametrize("damage", ["truncated_model", "corrupt_classes",
                                    "corrupt_transform"])
def test_a_damaged_run_directory_is_named(tmp_path, binary, damage):
  run = tmp_path / "run"
  message = _damaged_run(run, damage)
  output = tmp_path / "out"
  flag = "--export_dir" if binary == "srdc_tf.export" else "--output_dir"
  extra = [] if binary == "srdc_tf.export" else ["--target=synthetic:target"]
  result = run_testlib.run_module(binary, f"--model_dir={run}",
                                  f"{flag}={output}", *extra)
  assert result.returncode == 1
  assert message in result.stderr, result.stderr
  assert str(run) in result.stderr
  assert "Traceback" not in result.stderr
  assert not output.exists()


@pytest.mark.parametrize("binary, flag", [
    ("srdc_tf.export", "export_dir"), ("srdc_tf.evaluate", "output_dir")])
@pytest.mark.parametrize("where", ["file", "inside_a_file"])
def test_an_output_folder_that_is_a_file_is_refused(tmp_path, binary, flag,
                                                    where):
  run = tmp_path / "run"
  _damaged_run(run, "corrupt_classes")  # Never read: refused before.
  blocker = tmp_path / "a_file"
  blocker.write_text("keep me")
  path = blocker if where == "file" else blocker / "sub"
  extra = [] if binary == "srdc_tf.export" else ["--target=synthetic:target"]
  result = run_testlib.run_module(binary, f"--model_dir={run}",
                                  f"--{flag}={path}", *extra)
  assert result.returncode == 1
  expected = (f"--{flag}='{path}' is a file, not a folder" if where == "file"
              else f"--{flag}='{path}' cannot be created: '{blocker}' is a "
              "file")
  assert expected in result.stderr, result.stderr
  assert "Traceback" not in result.stderr
  assert blocker.read_text() == "keep me"


def test_a_model_dir_that_is_a_file_is_refused_by_export(tmp_path):
  path = tmp_path / "a_file"
  path.write_text("keep me")
  result = run_testlib.run_module("srdc_tf.export", f"--model_dir={path}",
                                  f"--export_dir={tmp_path / 'out'}")
  assert result.returncode == 1
  assert f"--model_dir='{path}' is not a folder" in result.stderr


@pytest.mark.parametrize("contents", ["{trunc", "[1, 2]", '{"task": "a"}'])
def test_a_corrupt_run_info_is_named_by_report(tmp_path, contents):
  run = tmp_path / "runs" / "a2w"
  os.makedirs(run)
  (run / "run_info.json").write_text(contents)
  result = run_testlib.run_module("srdc_tf.report",
                                  f"--run_dirs={tmp_path / 'runs'}",
                                  f"--output={tmp_path / 'table'}")
  assert result.returncode == 1
  assert f"'{run / 'run_info.json'}' is" in result.stderr, result.stderr
  assert "Traceback" not in result.stderr


def test_a_corrupt_run_info_is_named_by_train(tmp_path):
  model_dir = tmp_path / "run"
  os.makedirs(model_dir)
  (model_dir / "run_info.json").write_text("{trunc")
  result = run_testlib.train(*run_testlib.TINY_RUN, f"--model_dir={model_dir}")
  assert result.returncode == 1
  assert (f"'{model_dir / 'run_info.json'}' cannot be read as a finished "
          "run's record") in result.stderr
  assert "is truncated or corrupt" in result.stderr
  assert "Traceback" not in result.stderr
  assert (model_dir / "run_info.json").read_text() == "{trunc"
