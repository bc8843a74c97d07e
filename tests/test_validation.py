"""Tests of srdc_tf.data.validation: every kind of bad image file is named
with what is wrong, up front; skipped files are reported; CMYK and RGBA
images load as RGB."""

import os

import numpy as np
from PIL import Image
import pytest

from srdc_tf.data import domain as domain_lib
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms
from srdc_tf.data import validation

RNG = np.random.default_rng(0)


def _pixels(height=24, width=20):
  return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _write_good(path, mode="RGB", size=(20, 24)):
  image = Image.fromarray(_pixels(size[1], size[0]))
  if mode == "RGBA":
    alpha = Image.fromarray(RNG.integers(0, 256, size[::-1], dtype=np.uint8))
    image = image.convert("RGBA")
    image.putalpha(alpha)
  elif mode != "RGB":
    image = image.convert(mode)
  image.save(path)
  return str(path)


def _write_bad_files(folder):
  """One file of each bad kind; returns {name: expected words}."""
  good = _write_good(folder / "good.jpg")
  data = open(good, "rb").read()
  (folder / "truncated.jpg").write_bytes(data[:len(data) // 2])
  corrupt = bytearray(data)
  corrupt[len(data) // 2:len(data) // 2 + 300] = bytes(range(256)) + bytes(44)
  (folder / "corrupt.jpg").write_bytes(bytes(corrupt))
  png = open(_write_good(folder / "whole.png"), "rb").read()
  (folder / "truncated.png").write_bytes(png[:len(png) // 2])
  os.remove(folder / "whole.png")
  (folder / "notes.jpg").write_text("not an image at all\n")
  (folder / "readme.txt").write_text("class description\n")
  (folder / "empty.png").write_bytes(b"")
  Image.new("RGB", (1, 1)).save(folder / "dot.png")
  Image.new("1", (10000, 10000)).save(folder / "huge.png")
  return {
      "truncated.jpg": "corrupt or truncated JPEG",
      "corrupt.jpg": "corrupt or truncated JPEG",
      "truncated.png": "corrupt or truncated PNG",
      "notes.jpg": "not an image file",
      "readme.txt": "not an image file",
      "empty.png": "empty file (0 bytes)",
      "dot.png": "1x1 pixels, smaller than the minimum side of 8",
      "huge.png": "10000x10000 pixels, larger than the maximum side of 8192",
  }


def _domain(paths, labels=None, class_names=("a", "b")):
  labels = [0] * len(paths) if labels is None else labels
  return domain_lib.Domain(name="test", class_names=class_names,
                           labels=np.asarray(labels, np.int32),
                           paths=tuple(str(p) for p in paths))


@pytest.fixture(name="bad_files")
def fixture_bad_files(tmp_path):
  return tmp_path, _write_bad_files(tmp_path)


def test_each_bad_file_is_named_with_its_problem(bad_files):
  folder, expected = bad_files
  assert validation.check_image_file(str(folder / "good.jpg")) is None
  for name, words in expected.items():
    problem = validation.check_image_file(str(folder / name))
    assert problem is not None and words in problem, (name, problem)
  assert validation.check_image_file(str(folder / "gone.jpg")) == (
      "no such file")


def test_size_limits_are_settings(bad_files):
  folder, _ = bad_files
  assert validation.check_image_file(str(folder / "dot.png"), min_side=1) is None
  problem = validation.check_image_file(str(folder / "good.jpg"), max_side=16)
  assert "20x24 pixels, larger than the maximum side of 16" in problem


def test_bad_files_fail_the_domain_in_one_error(bad_files):
  folder, expected = bad_files
  paths = [folder / "good.jpg", folder / "missing.jpg"] + [
      folder / name for name in expected]
  with pytest.raises(validation.BadImagesError) as error:
    validation.validate_domain(_domain(paths))
  message = str(error.value)
  assert f"{len(expected) + 1} bad image file(s)" in message
  assert f"{folder / 'missing.jpg'}: no such file" in message
  for name, words in expected.items():
    assert str(folder / name) in message and words in message, name
  assert "--skip_bad_images" in message
  assert len(error.value.bad) == len(expected) + 1


def test_skipping_drops_and_reports_the_bad_files(bad_files):
  folder, expected = bad_files
  second = _write_good(folder / "second.png")
  paths = [folder / "good.jpg", second] + [folder / name for name in expected]
  labels = [0, 1] + [1] * len(expected)
  kept, skipped = validation.validate_domain(_domain(paths, labels),
                                             skip_bad=True)
  assert kept.paths == (str(folder / "good.jpg"), second)
  np.testing.assert_array_equal(kept.labels, [0, 1])
  assert sorted(os.path.basename(item.path) for item in skipped) == sorted(
      expected)


def test_a_class_left_without_images_is_an_error(bad_files):
  folder, _ = bad_files
  domain = _domain([folder / "good.jpg", folder / "empty.png"], [0, 1])
  with pytest.raises(validation.BadImagesError,
                     match=r"b: class has no usable image left"):
    validation.validate_domain(domain, skip_bad=True)


def test_duplicate_entries(tmp_path):
  one = _write_good(tmp_path / "one.png")
  two = _write_good(tmp_path / "two.png")
  with pytest.raises(validation.BadImagesError,
                     match=r"one.png: listed 2 times \(duplicate"):
    validation.validate_domain(_domain([one, two, one]))
  three = _write_good(tmp_path / "three.png")
  kept, skipped = validation.validate_domain(
      _domain([one, two, one, two, three], [0, 1, 0, 0, 1]), skip_bad=True)
  # The same label twice: the first kept; different labels: both dropped.
  assert kept.paths == (one, three)
  assert {os.path.basename(s.path): s.problem[:26] for s in skipped} == {
      "one.png": "listed 2 times (duplicate ",
      "two.png": "listed 2 times with differ"}


def test_directory_domain_reports_every_file_of_a_class_folder(tmp_path):
  for name in ("cat", "dog"):
    (tmp_path / name).mkdir()
    _write_good(tmp_path / name / "a.jpg")
  (tmp_path / "dog" / "notes.txt").write_text("not an image")
  with pytest.raises(validation.BadImagesError,
                     match=r"dog/notes.txt: not an image file"):
    sources.load_domain(str(tmp_path))
  domain = sources.load_domain(str(tmp_path), skip_bad_images=True)
  assert len(domain) == 2
  assert [os.path.basename(s.path) for s in domain.skipped] == ["notes.txt"]


def test_cmyk_rgba_grey_alpha_palette_and_webp_images_load_as_rgb(tmp_path):
  # WebP with alpha too, which TensorFlow's WebP decoder cannot give 3
  # channels (transforms.decode_image drops its alpha).
  paths = [_write_good(tmp_path / f"{mode.lower()}.{ext}", mode)
           for mode, ext in (("CMYK", "jpg"), ("RGBA", "png"), ("LA", "png"),
                             ("P", "png"), ("RGB", "jpg"),
                             ("RGB", "webp"), ("RGBA", "webp"))]
  domain = _domain(paths)
  kept, skipped = validation.validate_domain(domain)
  assert kept is domain and not skipped
  transform = transforms.ImageTransform(image_size=20, resize_size=20)
  dataset = pipeline.eval_dataset(domain, 8, transform)
  images = next(iter(dataset))[0].numpy()
  assert images.shape == (len(paths), 20, 20, 3)
  for path, image in zip(paths, images):
    expected = np.asarray(Image.open(path).convert("RGB"), np.float32)
    top = (expected.shape[0] - 20) // 2  # The eval view's centre crop.
    expected = expected[top:top + 20]
    # Two JPEG decoders may differ by a few levels; the others are exact.
    tolerance = 3 if path.endswith((".jpg", ".webp")) else 0
    np.testing.assert_allclose(image, expected, atol=tolerance, err_msg=path)
