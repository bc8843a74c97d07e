"""Every spec kind of the one source parser, on generated trees and, when
present, on the ../shared data."""

import os

import numpy as np
import pytest
from PIL import Image

from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SRDC_SHARED_DIR",
                        os.path.join(os.path.dirname(REPO), "shared"))
TFDS_DIR = os.path.join(SHARED, "data", "tfds")
OFFICE_DIR = os.path.join(SHARED, "data", "office31")


def _write_image(path, size, mode="RGB", fmt=None, value=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  channels = {"RGB": 3, "L": 1}[mode]
  array = np.full((size[1], size[0], channels), value, np.uint8)
  Image.fromarray(array.squeeze(-1) if channels == 1 else array,
                  mode).save(path, fmt)


def _tree(root, classes, per_class=2, layout=""):
  for k, name in enumerate(classes):
    for i in range(per_class):
      ext = ".png" if i % 2 else ".jpg"
      mode = "L" if (k + i) % 3 == 0 else "RGB"
      _write_image(os.path.join(root, layout, name, f"img{i}{ext}"),
                   (20 + 7 * i, 13 + 5 * k), mode, value=10 * k + i)
  return root


@pytest.mark.parametrize("layout", ["", "images"])
def test_directory_spec_reads_class_folders(tmp_path, layout):
  root = _tree(str(tmp_path / "domain"), ["cat", "ant", "bee"], 2, layout)
  domain = sources.load_domain(root)
  assert domain.class_names == ("ant", "bee", "cat")  # Sorted folder names.
  np.testing.assert_array_equal(domain.labels, [0, 0, 1, 1, 2, 2])
  assert all(path.startswith(root) for path in domain.paths)


def test_relative_specs_start_from_data_root(tmp_path, monkeypatch):
  _tree(str(tmp_path / "office" / "amazon"), ["a", "b"], 1, "images")
  domain = sources.load_domain("office/amazon", data_root=str(tmp_path))
  assert len(domain) == 2
  monkeypatch.setenv(sources.DATA_ROOT_ENV, str(tmp_path))
  assert len(sources.load_domain("office/amazon")) == 2


def test_image_list_spec_with_root_and_folder_class_names(tmp_path):
  root = _tree(str(tmp_path / "data"), ["dog", "owl"], 2)
  listing = tmp_path / "list.txt"
  listing.write_text("# comment\nowl/img0.jpg 1\ndog/img1.png 0\n\n"
                     "dog/img0.jpg 0\n")
  domain = sources.load_domain(str(listing), list_root=root)
  assert domain.class_names == ("dog", "owl")
  np.testing.assert_array_equal(domain.labels, [1, 0, 0])
  assert domain.paths[0] == os.path.join(os.path.realpath(root), "owl",
                                         "img0.jpg")


@pytest.mark.parametrize("line, message", [
    ("dog/img0.jpg", "expected 'relative/path label'"),
    ("dog/img0.jpg x", "expected 'relative/path label'"),
    ("../outside.jpg 0", "points outside the root"),
])
def test_bad_image_list_lines_name_file_and_line(tmp_path, line, message):
  root = _tree(str(tmp_path / "data"), ["dog"], 1)
  listing = tmp_path / "list.txt"
  listing.write_text(f"dog/img0.jpg 0\n{line}\n")
  with pytest.raises(ValueError, match=message) as error:
    sources.load_domain(str(listing), list_root=root)
  assert f"{listing}:2" in str(error.value)


@pytest.mark.parametrize("spec, message", [
    ("synthetic:nowhere", "unknown synthetic domain"),
    ("no/such/place", "neither a directory nor an image list"),
    ("tfds:", "names no dataset"),
    ("", "empty data spec"),
])
def test_bad_specs_are_named(spec, message):
  with pytest.raises(ValueError, match=message):
    sources.load_domain(spec)


def test_parse_tfds_spec():
  assert sources.parse_tfds_spec("tfds:mnist") == ("mnist", "train")
  assert sources.parse_tfds_spec("tfds:domainnet/real:test") == (
      "domainnet/real", "test")


def test_mismatched_classes_are_named_or_reduced_to_shared(tmp_path):
  source = sources.load_domain(_tree(str(tmp_path / "s"), ["a", "b", "c"], 1))
  target = sources.load_domain(_tree(str(tmp_path / "t"), ["d", "b", "a"], 2))
  with pytest.raises(ValueError, match=r"\['c'\] only in the source.*"
                     r"\['d'\] only in the target"):
    sources.align_classes(source, target)
  source, target = sources.align_classes(source, target, shared_only=True)
  assert source.class_names == target.class_names == ("a", "b")
  np.testing.assert_array_equal(source.labels, [0, 1])
  np.testing.assert_array_equal(target.labels, [0, 0, 1, 1])
  assert all("/a/" in p for p in np.asarray(target.paths)[target.labels == 0])


def test_same_classes_in_another_order_get_source_ids(tmp_path):
  source = sources.load_domain(_tree(str(tmp_path / "s"), ["a", "b"], 1))
  target = sources.load_domain(_tree(str(tmp_path / "t"), ["a", "b"], 1))
  reordered = target.restricted_to(("b", "a"))
  _, aligned = sources.align_classes(source, reordered)
  assert aligned.class_names == ("a", "b")
  assert all(f"/{aligned.class_names[l]}/" in p
             for p, l in zip(aligned.paths, aligned.labels))


@pytest.mark.parametrize("channels", [1, 3])
def test_mixed_files_decode_to_one_shape(tmp_path, channels):
  domain = sources.load_domain(_tree(str(tmp_path / "d"), ["a", "b"], 3))
  transform = transforms.ImageTransform(16, channels=channels)
  images, labels, indices = next(iter(
      pipeline.eval_dataset(domain, len(domain), transform)))
  assert images.shape == (6, 16, 16, channels)
  np.testing.assert_array_equal(indices, np.arange(6))
  np.testing.assert_array_equal(labels, domain.labels)


def test_synthetic_domains_share_classes_but_not_style():
  source = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=5)
  target = sources.load_domain("synthetic:target",
                               synthetic_examples_per_class=5)
  assert source.class_names == target.class_names
  assert len(source) == len(target) == 30
  assert np.bincount(source.labels).tolist() == [5] * 6
  # The source is grey on dark, the target coloured: the shift is real.
  assert source.images.std(axis=-1).mean() < 10 < target.images.std(
      axis=-1).mean()
  again = sources.load_domain("synthetic:source",
                              synthetic_examples_per_class=5)
  np.testing.assert_array_equal(again.images, source.images)


def _prepare_fake_tfds(root):
  for folder in ("mnist/3.0.1", "cifar10_corrupted/fog_1/1.0.0"):
    os.makedirs(root / folder)
    (root / folder / "dataset_info.json").write_text("{}")
  # Not datasets: a file in the folder itself, and one deep in downloads/.
  (root / "dataset_info.json").write_text("{}")
  os.makedirs(root / "downloads" / "extracted" / "a" / "b")
  (root / "downloads" / "extracted" / "a" / "b" / "dataset_info.json"
   ).write_text("{}")
  return root


def test_prepared_tfds_datasets_lists_names_and_configs(tmp_path):
  root = _prepare_fake_tfds(tmp_path / "tfds")
  assert sources.prepared_tfds_datasets(str(root)) == [
      "cifar10_corrupted/fog_1", "mnist"]
  assert sources.prepared_tfds_datasets(str(tmp_path / "missing")) == []
  assert sources.prepared_tfds_datasets(None) == []


def test_missing_tfds_dataset_error_is_short_and_names_what_is_there(
    tmp_path):
  root = _prepare_fake_tfds(tmp_path / "tfds")
  with pytest.raises(ValueError) as error:
    sources.load_domain("tfds:nosuch:train", tfds_data_dir=str(root))
  message = str(error.value)
  assert "'nosuch'" in message and str(root) in message
  assert message.endswith("; prepared there: cifar10_corrupted/fog_1, mnist")
  # Not TFDS's list of every dataset it knows (hundreds of lines).
  assert len(message.splitlines()) == 1, message


@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isdir(os.path.join(TFDS_DIR, "usps")),
                    reason=f"no prepared TFDS data under {TFDS_DIR}")
@pytest.mark.parametrize("spec, size, shape", [
    ("tfds:usps", 7291, (16, 16, 1)),
    ("tfds:usps:test", 2007, (16, 16, 1)),
])
def test_tfds_spec_loads_prepared_data_offline(spec, size, shape):
  domain = sources.load_domain(spec, tfds_data_dir=TFDS_DIR)
  assert len(domain) == size
  assert domain.images.shape[1:] == shape
  assert domain.class_names == tuple(str(k) for k in range(10))
  assert set(np.unique(domain.labels)) == set(range(10))


@pytest.mark.shared_data
@pytest.mark.skipif(not os.path.isdir(OFFICE_DIR),
                    reason=f"no Office-31 under {OFFICE_DIR}")
def test_office31_layout_is_detected():
  domain = sources.load_domain("office31/webcam",
                               data_root=os.path.dirname(OFFICE_DIR))
  assert len(domain) == 795 and domain.num_classes == 31
  assert domain.class_names[0] == "back_pack"
  transform = transforms.ImageTransform(224, resize_size=256,
                                        random_flip=True)
  batch = next(iter(pipeline.train_dataset(domain, domain, 4, transform)))
  assert batch["source_image"].shape == (4, 224, 224, 3)


def test_relative_list_root_starts_from_data_root(tmp_path):
  _tree(str(tmp_path / "clef"), ["dog"], 1)
  (tmp_path / "clef" / "list").mkdir()
  (tmp_path / "clef" / "list" / "iList.txt").write_text("dog/img0.jpg 0\n")
  domain = sources.load_domain("clef/list/iList.txt", data_root=str(tmp_path),
                               list_root="clef")
  assert domain.paths[0] == os.path.join(os.path.realpath(tmp_path), "clef",
                                         "dog", "img0.jpg")


@pytest.mark.parametrize("flagfile", sorted(
    os.path.relpath(os.path.join(folder, name), REPO)
    for folder, _, names in os.walk(os.path.join(REPO, "flags"))
    for name in names if name.endswith(".cfg")))
def test_every_flagfile_parses(flagfile):
  from absl import flags as absl_flags
  from srdc_tf import train  # pylint: disable=unused-import
  values = absl_flags.FlagValues()
  # Only the trainer's own flags: other binaries' required flags may be
  # registered in this process too.
  for module in (train.__name__, "srdc_tf.data_flags"):
    for flag in absl_flags.FLAGS.get_flags_for_module(module):
      values[flag.name] = flag
  values(["train", f"--flagfile={os.path.join(REPO, flagfile)}",
          "--model_dir=/tmp/unused"])
  assert values.source and values.target
  assert values.task
