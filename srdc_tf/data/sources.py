"""The one parser of source/target specs, used by every binary.

Spec kinds:

- `synthetic:source`, `synthetic:target`: the built-in shapes domains.
- `tfds:<name>[/<config>][:<split>]`: any TensorFlow Datasets dataset with
  an `image` and a `label` (ClassLabel) feature, read from `tfds_data_dir`
  (or TFDS' default) and never downloaded. Split defaults to `train`.
- `textured:<name>[:<split>]`: the grey digits of the TFDS split that
  `tfds:<name>:<split>` names (`textured:mnist:train`,
  `textured:mnist:test`), composited onto procedural colour textures as
  MNIST-M blends them with natural-image patches
  (`srdc_tf.data.textured_digits`), in colour, with the digits' labels and
  class names. Generated at load time from a seed fixed per split
  (`textured_digits.split_seed`), not the run's `--seed`: every run and
  seed sees the same images. Split defaults to `train`.
- A directory: one folder per class, or the Office-31 layout
  `<domain>/images/<class>/` (detected).
- An image-list file (`*.txt`): one `relative/path label` per line, paths
  relative to `list_root` (default: the list's folder).

Relative directory and list paths resolve against `data_root` (the
`--data_root` flag, or the `SRDC_DATA_ROOT` environment variable).

The files of directory and list domains are checked once, when loaded
(`srdc_tf.data.validation`): a bad file stops the load with a message that
names it, or is skipped and reported with `skip_bad_images`. In a class
folder every file but hidden ones counts, in its sub-folders too (read
recursively, links followed; a link loop is an error naming the link), so
a stray non-image file is reported, not silently ignored.
"""

import dataclasses
import os

import numpy as np

from srdc_tf.data import domain as domain_lib
from srdc_tf.data import synthetic
from srdc_tf.data import textured_digits
from srdc_tf.data import validation

SYNTHETIC_PREFIX = "synthetic:"
TFDS_PREFIX = "tfds:"
TEXTURED_PREFIX = "textured:"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
DATA_ROOT_ENV = "SRDC_DATA_ROOT"


def _resolve(path, data_root):
  path = os.path.expanduser(path)
  if os.path.isabs(path):
    return path
  root = data_root or os.environ.get(DATA_ROOT_ENV) or os.getcwd()
  return os.path.join(root, path)


def _load_synthetic(spec, examples_per_class, seed):
  style = spec[len(SYNTHETIC_PREFIX):]
  if style not in ("source", "target"):
    raise ValueError(
        f"unknown synthetic domain {spec!r}: use synthetic:source or "
        "synthetic:target")
  # Distinct seeds per style, so the two domains never share draws.
  offset = {"source": 0, "target": 1}[style]
  return synthetic.make_domain(style, examples_per_class, seed * 2 + offset)


def parse_tfds_spec(spec):
  """`tfds:<name>[/<config>][:<split>]` -> `(name_with_config, split)`."""
  body = spec[len(TFDS_PREFIX):]
  name, _, split = body.partition(":")
  if not name:
    raise ValueError(f"tfds spec {spec!r} names no dataset")
  return name, split or "train"


def prepared_tfds_datasets(tfds_data_dir):
  """The datasets prepared in a TFDS data folder.

  Args:
    tfds_data_dir: the folder (`--tfds_data_dir`), or None.

  Returns:
    Sorted names of its sub-folders that hold a prepared version
    (`<name>[/<config>]/<version>/dataset_info.json`); empty when the
    folder is None or missing.
  """
  if not tfds_data_dir or not os.path.isdir(tfds_data_dir):
    return []
  names = set()
  for folder, subfolders, files in os.walk(tfds_data_dir):
    parts = os.path.relpath(folder, tfds_data_dir).split(os.sep)
    # <name>/<version> or <name>/<config>/<version>: nothing deeper is
    # read, so a large downloads/ tree is not walked.
    if len(parts) >= 3:
      subfolders[:] = []
    if "dataset_info.json" in files and len(parts) >= 2:
      names.add("/".join(parts[:-1]))
  return sorted(names)


def _load_tfds(spec, tfds_data_dir):
  import tensorflow_datasets as tfds  # Imported on use: slow to import.
  name, split = parse_tfds_spec(spec)
  try:
    builder = tfds.builder(name, data_dir=tfds_data_dir)
  except Exception as error:  # TFDS raises many types for a missing dataset.
    # TFDS's message goes on to list every dataset it can build (hundreds
    # of lines); what the user needs is what is prepared in the folder.
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    raise ValueError(
        f"cannot open TFDS dataset {name!r} (data_dir={tfds_data_dir!r}): "
        f"{reason.rstrip('.')}; prepared there: "
        f"{', '.join(prepared_tfds_datasets(tfds_data_dir)) or 'none'}"
    ) from error
  features = builder.info.features
  if "image" not in features or "label" not in features:
    raise ValueError(
        f"TFDS dataset {name!r} needs 'image' and 'label' features, has "
        f"{sorted(features.keys())}")
  # Fixed-shape images (digits) are decoded once into memory; others stay
  # encoded and are decoded on the fly, which keeps large sets small.
  fixed_shape = None not in tuple(features["image"].shape)
  decoders = None if fixed_shape else {"image": tfds.decode.SkipDecoding()}
  try:
    dataset = builder.as_dataset(split=split, shuffle_files=False,
                                 decoders=decoders)
  except Exception as error:
    raise ValueError(
        f"cannot read split {split!r} of TFDS dataset {name!r} (it must be "
        f"prepared under data_dir={tfds_data_dir!r}; nothing is downloaded): "
        f"{error}") from error
  images, labels = [], []
  for example in dataset.as_numpy_iterator():
    images.append(example["image"])
    labels.append(example["label"])
  storage = ({"images": np.stack(images)} if fixed_shape
             else {"encoded": np.asarray(images, dtype=object)})
  class_names = tuple(features["label"].names)
  return domain_lib.Domain(
      name=f"{name}:{split}", class_names=class_names,
      labels=np.asarray(labels, np.int32), **storage)


def _load_textured(spec, tfds_data_dir):
  digits_spec = TFDS_PREFIX + spec[len(TEXTURED_PREFIX):]
  if digits_spec == TFDS_PREFIX:
    raise ValueError(f"textured spec {spec!r} names no dataset (e.g. "
                     "textured:mnist:train)")
  name, split = parse_tfds_spec(digits_spec)
  try:
    digits = _load_tfds(digits_spec, tfds_data_dir)
  except ValueError as error:
    raise ValueError(
        f"data spec {spec!r} composites the digits of {digits_spec!r}, "
        "which cannot be loaded (pass the TFDS folder that holds them as "
        f"--tfds_data_dir or $TFDS_DATA_DIR): {error}") from error
  if digits.images is None or digits.images.shape[-1] != 1:
    shape = None if digits.images is None else digits.images.shape[1:]
    raise ValueError(
        f"data spec {spec!r} needs fixed-size grey images, and "
        f"{digits_spec!r} has images of shape {shape}")
  images = textured_digits.composite(digits.images,
                                     textured_digits.split_seed(name, split))
  return domain_lib.Domain(
      name=f"textured:{name}:{split}", class_names=digits.class_names,
      labels=digits.labels, images=images)


def _class_folders(directory):
  images = os.path.join(directory, "images")
  entries = [e for e in os.listdir(directory) if not e.startswith(".")]
  if entries == ["images"] and os.path.isdir(images):
    directory = images  # The Office-31 layout.
  classes = sorted(e for e in os.listdir(directory)
                   if os.path.isdir(os.path.join(directory, e))
                   and not e.startswith("."))
  return directory, classes


def class_folder_files(folder):
  """Every file under a class folder, in its sub-folders too, sorted.

  Symbolic links are followed. Hidden files and folders (names starting
  with ".") are left out; everything else is returned, so that a file that
  is not an image (or a dangling link) is reported by the validation that
  follows, never dropped without a word.

  Args:
    folder: the class folder.

  Returns:
    The file paths, sorted by their path below `folder`.

  Raises:
    ValueError: a folder is a link back to a folder that contains it (a
      loop, or a link to the domain's root), naming the link and where it
      leads.
  """
  files = []

  def walk(current, ancestors):
    for entry in sorted(os.listdir(current)):
      if entry.startswith("."):
        continue
      path = os.path.join(current, entry)
      if not os.path.isdir(path):
        files.append(path)
        continue
      real = os.path.realpath(path)
      if real in ancestors:
        raise ValueError(
            f"symbolic link loop: {path!r} leads to {real!r}, a folder that "
            "contains it; remove the link (images below a class folder are "
            "read recursively)")
      walk(path, ancestors | {real})

  # The class folder and every folder above it: a link to one of them
  # would read the folder again (or the other classes).
  real, above = os.path.realpath(folder), set()
  while real not in above:
    above.add(real)
    real = os.path.dirname(real)
  walk(folder, frozenset(above))
  return files


def _load_directory(path, display):
  directory, classes = _class_folders(path)
  if not classes:
    raise ValueError(f"{path!r}: no class folders (expected "
                     "<dir>/<class>/<image> or <dir>/images/<class>/<image>)")
  paths, labels = [], []
  for label, name in enumerate(classes):
    folder = os.path.join(directory, name)
    files = class_folder_files(folder)
    if not files:
      raise ValueError(
          f"class folder {folder!r} is empty: every class of {display!r} "
          "needs at least one image (remove the folder, and pass "
          "--shared_classes if the other domain still has the class)")
    paths += files
    labels += [label] * len(files)
  return domain_lib.Domain(name=display, class_names=tuple(classes),
                           labels=np.asarray(labels, np.int32),
                           paths=tuple(paths))


def _load_image_list(path, list_root, display):
  root = list_root or os.path.dirname(os.path.abspath(path))
  real_root = os.path.realpath(root)
  paths, labels, folder_of = [], [], {}
  with open(path, "rb") as f:
    lines = validation.list_file_lines(f.read(), path)
  for number, line in lines:
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    relative, label = validation.parse_list_line(line, path, number)
    full = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([full, real_root]) != real_root:
      raise ValueError(
          f"{path}:{number}: {relative!r} points outside the root {root!r}")
    paths.append(full)
    labels.append(label)
    folder_of.setdefault(label, set()).add(
        os.path.basename(os.path.dirname(relative)))
  if not paths:
    raise ValueError(f"image list {path!r} has no entries")
  num_classes = max(labels) + 1
  # Name classes after their folder when each label has exactly one.
  names = [folder_of.get(k, set()) for k in range(num_classes)]
  if all(len(n) == 1 for n in names) and len({*map(min, names)}) == num_classes:
    class_names = tuple(min(n) for n in names)
  else:
    class_names = tuple(str(k) for k in range(num_classes))
  return domain_lib.Domain(name=display, class_names=class_names,
                           labels=np.asarray(labels, np.int32),
                           paths=tuple(paths))


def load_domain(spec, data_root=None, list_root=None, tfds_data_dir=None,
                synthetic_examples_per_class=300, seed=0,
                skip_bad_images=False,
                min_image_side=validation.MIN_IMAGE_SIDE,
                max_image_side=validation.MAX_IMAGE_SIDE):
  """Loads the domain a spec names (see the module docstring).

  Args:
    spec: the spec string.
    data_root: folder that relative directory and list paths start from.
    list_root: root of the paths in an image list (default: its folder).
    tfds_data_dir: TFDS `data_dir`.
    synthetic_examples_per_class: size of a synthetic domain per class.
    seed: seed of generated data.
    skip_bad_images: leave out bad image files (listed in the domain's
      `skipped` and in a warning) instead of failing.
    min_image_side: smallest accepted image side, in pixels.
    max_image_side: largest accepted image side, in pixels.

  Returns:
    A `Domain`.

  Raises:
    ValueError: the spec or its data is unusable; a
      `validation.BadImagesError` lists bad image files.
  """
  if not spec:
    raise ValueError(f"empty data spec {spec!r}")
  if spec.startswith(SYNTHETIC_PREFIX):
    return _load_synthetic(spec, synthetic_examples_per_class, seed)
  if spec.startswith(TFDS_PREFIX):
    return _load_tfds(spec, tfds_data_dir)
  if spec.startswith(TEXTURED_PREFIX):
    return _load_textured(spec, tfds_data_dir)
  path = _resolve(spec, data_root)
  if os.path.isdir(path):
    domain = _load_directory(path, spec)
  elif os.path.isfile(path):
    domain = _load_image_list(
        path, list_root and _resolve(list_root, data_root), spec)
  else:
    raise ValueError(
        f"data spec {spec!r}: {path!r} is neither a directory nor an image "
        f"list, and the spec is not synthetic:..., tfds:... or textured:...")
  domain, skipped = validation.validate_domain(
      domain, min_side=min_image_side, max_side=max_image_side,
      skip_bad=skip_bad_images)
  return dataclasses.replace(domain, skipped=skipped) if skipped else domain


def align_classes(source, target, shared_only=False):
  """Gives the target the source's class ids.

  Args:
    source: the source `Domain` (its class order is kept).
    target: a target `Domain`.
    shared_only: keep only the classes both have (dropping the examples of
      the others) instead of failing on a mismatch.

  Returns:
    `(source, target)` with identical `class_names`.

  Raises:
    ValueError: the class sets differ (naming the classes) and not
      `shared_only`.
  """
  source_names, target_names = list(source.class_names), list(target.class_names)
  if source_names == target_names:
    return source, target
  only_source = sorted(set(source_names) - set(target_names))
  only_target = sorted(set(target_names) - set(source_names))
  if (only_source or only_target) and not shared_only:
    raise ValueError(
        f"class sets of source {source.name!r} and target {target.name!r} "
        f"differ: {only_source} only in the source, absent from the target; "
        f"{only_target} only in the target, absent from the source (use "
        "--shared_classes to keep the shared ones)")
  shared = [n for n in source_names if n in set(target_names)]
  if not shared:
    raise ValueError(f"source {source.name!r} and target {target.name!r} "
                     "share no class")
  return (source.restricted_to(shared), target.restricted_to(shared))
