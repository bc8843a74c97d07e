"""Checks every image file of a domain once, up front, before training.

A training epoch reads each image again and again; a file that cannot be
decoded would otherwise stop the run mid-epoch, hours in, or (worse) be
dropped without a word. `validate_domain` reads every file of a path-based
domain once, in parallel threads, and either fails with one error that
names each bad file and what is wrong with it, or (`skip_bad=True`) drops
them and returns the list, which the run logs and counts in its summary.

What is checked, per file:

- it exists, is a regular file and is not empty;
- its header names an image format (read with PIL; a few bytes, no decode);
- its size is within `[min_side, max_side]` pixels on each side, checked
  from the header before any decode (so a 10000 x 10000 file is never
  decoded);
- it decodes, with `transforms.decode_image`, the very decoder of the
  training and evaluation pipelines and of the export, so that a file that
  passes here cannot fail there;
- its format is one of `IMAGE_SIGNATURES` (JPEG, PNG, GIF, BMP, WebP), the
  formats the export's `serve_image_bytes` signature accepts. CMYK,
  palette, grey-with-alpha and RGBA images (WebP too) pass: the decoder
  converts them to the network's channels.

And per domain: a file listed twice (the same resolved path) is a bad
entry, since it would silently count twice; with different labels it is
dropped altogether, with the same label the first entry is kept. A class
that loses all its images to skipping is an error, never a silent change
of the label space.
"""

import collections
import concurrent.futures
import dataclasses
import os
import re
import time

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from srdc_tf import console
from srdc_tf.data import transforms

# Defaults of --min_image_side and --max_image_side. 8 admits every digits
# set (USPS is 16 x 16); 8192 is beyond any benchmark image and keeps a
# decoded image under 200 MB.
MIN_IMAGE_SIDE = 8
MAX_IMAGE_SIDE = 8192
# Labels of an image list must be below this: a bound far beyond any
# benchmark (DomainNet has 345 classes) that keeps a stray huge number from
# making a label space of a billion classes.
MAX_CLASSES = 100_000
# How many bad files an error message lists before "... and N more".
MAX_LISTED = 20
# The formats a run accepts, each with the bytes its files start with
# (offset, bytes): exactly those that the serving signature
# `serve_image_bytes` accepts too (`srdc_tf.serving`), so that every image
# a model trains on can be sent to its export. `tf.io.decode_image` reads
# more (JPEG XL), but the export could not check their size before decoding.
IMAGE_SIGNATURES = (
    ("JPEG", ((0, b"\xff\xd8\xff"),)),
    ("PNG", ((0, b"\x89PNG"),)),
    ("GIF", ((0, b"GIF8"),)),
    ("BMP", ((0, b"BM"),)),
    ("WebP", ((0, b"RIFF"), (8, b"WEBP"))),
)
FORMATS = "JPEG, PNG, GIF, BMP or WebP"


@dataclasses.dataclass(frozen=True)
class BadImage:
  """A file that cannot be trained on, and why."""
  path: str
  problem: str

  def __str__(self):
    return f"{self.path}: {self.problem}"


class BadImagesError(ValueError):
  """Some files of a domain cannot be used; the message lists them.

  Attributes:
    domain_name: the domain the files belong to.
    bad: the `BadImage`s.
  """

  def __init__(self, domain_name, bad, hint=True):
    self.domain_name = domain_name
    self.bad = tuple(bad)
    lines = [f"domain {domain_name!r}: {len(self.bad)} bad image file(s):"]
    lines += [f"  {item}" for item in self.bad[:MAX_LISTED]]
    if len(self.bad) > MAX_LISTED:
      lines.append(f"  ... and {len(self.bad) - MAX_LISTED} more")
    if hint:
      lines.append("Fix or remove them, or pass --skip_bad_images to train "
                   "without them.")
    super().__init__("\n".join(lines))


def image_format(contents):
  """The format of `IMAGE_SIGNATURES` that encoded bytes announce, or None.

  Args:
    contents: the first bytes of a file (12 are enough), or all of them.

  Returns:
    "JPEG", "PNG", "GIF", "BMP", "WebP", or None.
  """
  for name, parts in IMAGE_SIGNATURES:
    if all(contents[offset:offset + len(magic)] == magic
           for offset, magic in parts):
      return name
  return None


def image_format_tensors(contents):
  """`image_format` in the graph: which format scalar string tensor
  `contents` announces.

  Returns:
    A dict from each format name of `IMAGE_SIGNATURES` to a boolean scalar.
  """
  # Padded: substr fails beyond the end of a short element.
  head = tf.strings.join([tf.strings.substr(contents, 0, 16), b"\0" * 16])
  return {name: tf.reduce_all([
      tf.equal(tf.strings.substr(head, offset, len(magic)), magic)
      for offset, magic in parts]) for name, parts in IMAGE_SIGNATURES}


def list_file_lines(contents, path):
  """The lines of an image-list file, decoded as UTF-8.

  A UTF-8 byte-order mark (as Windows editors write) is dropped.

  Args:
    contents: the file's bytes.
    path: the file, for messages.

  Returns:
    `[(line number, text)]`, numbered from 1, without line ends.

  Raises:
    ValueError: the file is UTF-16 or a line is not valid UTF-8 (say,
      Latin-1), naming the file, the line and the first bad byte.
  """
  if contents.startswith((b"\xff\xfe", b"\xfe\xff")):
    raise ValueError(f"{path}: the list is UTF-16 encoded; save it as UTF-8")
  if contents.startswith(b"\xef\xbb\xbf"):
    contents = contents[3:]
  lines = []
  for number, raw in enumerate(contents.splitlines(), 1):
    try:
      lines.append((number, raw.decode("utf-8")))
    except UnicodeDecodeError as error:
      raise ValueError(
          f"{path}:{number}: not valid UTF-8 (byte 0x{raw[error.start]:02x} "
          f"at column {error.start + 1} of {raw!r}); save the list as "
          "UTF-8 (it looks like Latin-1 or another 8-bit encoding)"
      ) from error
  return lines


def parse_list_line(line, path, number, max_classes=MAX_CLASSES):
  """`(relative path, label)` of one `relative/path label` list line.

  Args:
    line: the line's text.
    path: the list file, for messages.
    number: the line number, for messages.
    max_classes: labels must be below this.

  Returns:
    The path as written and the label, an int in `[0, max_classes)`.

  Raises:
    ValueError: the line has no path and label, or the label is not a
      decimal integer in that range; naming the file, line and value.
  """
  parts = line.rsplit(maxsplit=1)
  if len(parts) != 2:
    raise ValueError(f"{path}:{number}: expected 'relative/path label', got "
                     f"{line.strip()!r}")
  relative, text = parts
  if not re.fullmatch(r"-?[0-9]+", text):
    raise ValueError(f"{path}:{number}: the label {text!r} is not an integer "
                     f"(expected 'relative/path label', got {line.strip()!r})")
  label = int(text)
  if not 0 <= label < max_classes:
    raise ValueError(
        f"{path}:{number}: label {label} is outside [0, {max_classes}); "
        "labels are class ids 0 .. K-1")
  return relative, label


def _decoder_message(error):
  """The useful line of a TensorFlow decoder error."""
  text = getattr(error, "message", None) or str(error)
  text = text.splitlines()[0] if text else type(error).__name__
  if "}}" in text:  # Drops the "{{function_node ...}} " prefix.
    text = text.split("}}", 1)[1].strip()
  return text


def _pil_decode_problem(path):
  """PIL's reason for failing to decode `path` (clearer than libjpeg's)."""
  try:
    with Image.open(path) as image:
      image.load()
  except Exception as error:  # pylint: disable=broad-except
    return str(error) or type(error).__name__
  return None


def check_image_file(path, min_side=MIN_IMAGE_SIDE, max_side=MAX_IMAGE_SIDE):
  """What is wrong with one image file, or None when it is usable.

  Args:
    path: the file.
    min_side: smallest accepted width and height, in pixels.
    max_side: largest accepted width and height, in pixels.

  Returns:
    A short description of the problem (for a message that also names the
    file), or None.
  """
  try:
    info = os.stat(path)
  except FileNotFoundError:
    return "no such file"
  except OSError as error:
    return f"cannot be read: {error.strerror or error}"
  if not os.path.isfile(path):
    return "not a regular file"
  if info.st_size == 0:
    return "empty file (0 bytes)"
  size = fmt = None
  try:
    with Image.open(path) as image:  # Reads the header only.
      size, fmt = image.size, image.format
  except Image.DecompressionBombError as error:
    return f"too large to decode safely: {error}"
  except Exception:  # pylint: disable=broad-except
    pass  # Not a format PIL knows; TensorFlow's decoder has the last word.
  if size is not None:
    width, height = size
    if min(width, height) < min_side:
      return (f"image is {width}x{height} pixels, smaller than the minimum "
              f"side of {min_side} (--min_image_side)")
    if max(width, height) > max_side:
      return (f"image is {width}x{height} pixels, larger than the maximum "
              f"side of {max_side} (--max_image_side)")
  try:
    with open(path, "rb") as f:
      contents = f.read()
  except OSError as error:
    return f"cannot be read: {error.strerror or error}"
  try:
    # The decoder of `Domain.load`: what passes here decodes in training.
    image = transforms.decode_image(contents, channels=3)
  except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
          tf.errors.FailedPreconditionError) as error:
    fmt = fmt or image_format(contents)
    if fmt is None:
      return f"not an image file (no {FORMATS} header)"
    if fmt.upper() not in ("JPEG", "PNG", "GIF", "BMP", "WEBP", "MPO"):
      return f"{fmt} image: TensorFlow decodes only {FORMATS}"
    reason = _pil_decode_problem(path) or _decoder_message(error)
    return f"corrupt or truncated {fmt} file: {reason}"
  if image_format(contents) is None:
    fmt = fmt or "this"
    return (f"{fmt} format is not accepted: a run takes {FORMATS} images, "
            "the formats its export can serve")
  height, width = int(image.shape[0]), int(image.shape[1])
  if min(width, height) < min_side:
    return (f"image is {width}x{height} pixels, smaller than the minimum "
            f"side of {min_side} (--min_image_side)")
  if max(width, height) > max_side:
    return (f"image is {width}x{height} pixels, larger than the maximum side "
            f"of {max_side} (--max_image_side)")
  return None


def _duplicates(paths, labels):
  """`(bad, drop)`: a `BadImage` per repeated path, and the indices of the
  entries to drop when skipping (later repeats; every entry of a path
  listed with different labels)."""
  where = collections.defaultdict(list)
  for index, path in enumerate(paths):
    where[os.path.realpath(path)].append(index)
  bad, drop = [], set()
  for path, indices in where.items():
    if len(indices) < 2:
      continue
    path_labels = sorted({int(labels[i]) for i in indices})
    if len(path_labels) > 1:
      bad.append(BadImage(path, f"listed {len(indices)} times with different "
                                f"labels {path_labels}"))
      drop.update(indices)
    else:
      bad.append(BadImage(path, f"listed {len(indices)} times (duplicate "
                                "entry; the first is kept when skipping)"))
      drop.update(indices[1:])
  return bad, drop


def validate_domain(domain, min_side=MIN_IMAGE_SIDE, max_side=MAX_IMAGE_SIDE,
                    skip_bad=False, num_threads=None):
  """Checks every file of a path-based domain (see the module docstring).

  Args:
    domain: a `Domain`; one that is not path-based is returned as is.
    min_side: smallest accepted image side, in pixels.
    max_side: largest accepted image side, in pixels.
    skip_bad: drop bad files (returning them) instead of failing.
    num_threads: decoding threads (default: twice the CPU count, at most 32).

  Returns:
    `(domain, skipped)`: the domain without the bad files, and a tuple of
    `BadImage` (empty when nothing was wrong).

  Raises:
    BadImagesError: a file is bad and not `skip_bad`, or skipping would
      leave a class of the domain without images.
  """
  if domain.paths is None:
    return domain, ()
  if min_side <= 0 or max_side < min_side:
    raise ValueError(f"need 0 < min_side <= max_side, got min_side="
                     f"{min_side!r}, max_side={max_side!r}")
  paths = list(domain.paths)
  labels = np.asarray(domain.labels)
  start = time.time()
  threads = num_threads or min(32, 2 * (os.cpu_count() or 1))
  progress = console.Progress(f"checking {domain.name} files",
                              total=len(paths), transient=True)
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    problems = []
    for problem in pool.map(
        lambda path: check_image_file(path, min_side, max_side), paths):
      problems.append(problem)
      progress.update()
  progress.close()
  bad = [BadImage(path, problem) for path, problem in zip(paths, problems)
         if problem is not None]
  duplicate_bad, drop = _duplicates(paths, labels)
  bad += duplicate_bad
  drop.update(i for i, problem in enumerate(problems) if problem is not None)
  logging.info("checked %d image files of %r in %.1fs: %d bad", len(paths),
               domain.name, time.time() - start, len(bad))
  if not bad:
    return domain, ()
  if not skip_bad:
    raise BadImagesError(domain.name, bad)
  keep = np.ones(len(paths), bool)
  keep[sorted(drop)] = False
  before = collections.Counter(labels[labels >= 0].tolist())
  after = collections.Counter(labels[keep & (labels >= 0)].tolist())
  emptied = [domain.class_names[k] for k in sorted(before) if not after[k]]
  if emptied:
    raise BadImagesError(
        domain.name,
        [BadImage(str(name), "class has no usable image left after skipping "
                             "the bad files") for name in emptied] + bad,
        hint=False)
  logging.warning(
      "domain %r: skipping %d bad image file(s) (--skip_bad_images):\n%s",
      domain.name, len(bad), "\n".join(f"  {item}" for item in bad))
  return domain.select(keep), tuple(bad)
