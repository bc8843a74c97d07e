"""Tests of the export binary (srdc_tf.export) and the run files it reads."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from srdc_tf import run_files
from srdc_tf import serving
from srdc_tf.data import transforms

import serving_testlib as lib


def test_runner_writes_the_run_files():
  settings, data, _ = lib.trained_run()
  with open(os.path.join(settings.model_dir, run_files.CLASSES_FILE)) as f:
    assert json.load(f) == list(data.source.class_names)
  assert run_files.read_class_names(settings.model_dir) == lib.CLASS_NAMES
  assert run_files.read_transform(settings.model_dir) == settings.transform


@pytest.mark.e2e
def test_export_binary_writes_the_next_version():
  settings, data, _ = lib.trained_run()
  base = lib.work_dir("binary")
  # A version already there (an older export) must be left alone.
  os.makedirs(os.path.join(base, "3"))
  with open(os.path.join(base, "3", "keep"), "w") as f:
    f.write("older")
  umask = os.umask(0o077)  # The export binary inherits a strict umask.
  try:
    done = lib.run_python(["-m", "srdc_tf.export",
                           f"--model_dir={settings.model_dir}",
                           f"--export_dir={base}"])
  finally:
    os.umask(umask)
  assert done.returncode == 0, done.stderr
  version = os.path.join(base, "4")
  assert done.stdout.strip().splitlines()[-1] == version
  assert os.listdir(os.path.join(base, "3")) == ["keep"]
  assert sorted(os.listdir(base)) == ["3", "4"]
  # Readable by TF Serving running as another user, whatever the umask.
  for folder, names, files in os.walk(version):
    assert os.stat(folder).st_mode & 0o777 == 0o755, folder
    for name in files:
      path = os.path.join(folder, name)
      assert os.stat(path).st_mode & 0o777 == 0o644, path

  loaded = tf.saved_model.load(version)
  assert serving.exported_class_names(loaded) == tuple(data.source.class_names)
  assert serving.exported_transform(loaded) == settings.transform
  model = run_files.load_model(settings.model_dir)
  images = lib.pixel_images(4, seed=7)
  outputs = loaded.signatures[serving.IMAGES_SIGNATURE](
      images=tf.constant(images))
  _, h, logits = model.embed(tf.constant(images), training=False)
  np.testing.assert_allclose(outputs["probabilities"].numpy(),
                             tf.nn.softmax(logits).numpy(), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(outputs["embedding"].numpy(), h.numpy(),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.e2e
def test_export_binary_needs_both_flags():
  done = lib.run_python(["-m", "srdc_tf.export", "--model_dir=/nowhere"])
  assert done.returncode != 0
  assert "--export_dir" in done.stderr


def test_missing_or_bad_class_file_is_reported():
  folder = lib.work_dir("no_classes")
  with pytest.raises(FileNotFoundError, match="classes.json"):
    run_files.read_class_names(folder)
  with open(os.path.join(folder, run_files.CLASSES_FILE), "w") as f:
    json.dump({"disc": 0}, f)
  with pytest.raises(ValueError, match=r"list of class names, got \{'disc'"):
    run_files.read_class_names(folder)
  with pytest.raises(FileNotFoundError, match="model.keras"):
    run_files.load_model(folder)


def test_run_files_round_trip():
  folder = lib.work_dir("round_trip")
  transform = transforms.ImageTransform(image_size=224, resize_size=256,
                                        random_flip=True)
  run_files.write_run_files(folder, ["b", "a"], transform)
  assert run_files.read_class_names(folder) == ("b", "a")
  assert run_files.read_transform(folder) == transform
  assert sorted(os.listdir(folder)) == [run_files.CLASSES_FILE,
                                        run_files.TRANSFORM_FILE]


def test_a_run_without_transform_file_exports_at_the_model_size():
  settings, _, _ = lib.trained_run()
  folder = lib.work_dir("old_run")
  for name in (run_files.MODEL_FILE, run_files.CLASSES_FILE):
    shutil.copy(os.path.join(settings.model_dir, name), folder)
  assert run_files.read_transform(folder) is None
  model = run_files.load_model(folder)
  export = serving.export_saved_model(
      model, lib.work_dir("old_export"), run_files.read_class_names(folder),
      transform=run_files.read_transform(folder))
  loaded = tf.saved_model.load(export)
  assert serving.exported_transform(loaded) == transforms.ImageTransform(32)
