r"""How large and how slanted are the digits of two domains, once resized to
the network's input? Label-free: it reads images, never labels.

For the first --count images of each spec, resized as evaluation resizes
them (`--image_size`), it prints the mean and median height and width of
the ink's bounding box (the rows and columns holding a pixel brighter than
--threshold, channels averaged), the ratio of the domains' mean heights,
and the slant of the strokes: the angle from vertical of each image's
principal axis of ink (intensity-weighted second moments, the classic
deslanting measure), as the mean and 90th percentile of its absolute value.
USPS digits fill their 16x16 frame and were deslanted; MNIST digits fill
a 20x20 box of 28x28 and keep their writers' slant. These are the figures
behind the digits flagfiles' `--random_scale` and `--random_shear`.

  python benchmarks/digit_geometry.py --tfds_data_dir=$DATA_ROOT/tfds \
    --specs=tfds:usps:train,tfds:mnist:train
"""

from absl import app
from absl import flags
import numpy as np

import benchlib  # noqa: F401  Puts the repository on sys.path.
from srdc_tf import data_flags

FLAGS = flags.FLAGS


def define_flags():
  """The binary's flags, defined when it runs: the tests import this
  module's functions beside other benchmarks that define --count and the
  data location flags too."""
  flags.DEFINE_list("specs", ["tfds:usps:train", "tfds:mnist:train"],
                    "Two or more data specs (as --source and --target).")
  data_flags.define_data_location_flags()
  flags.DEFINE_integer("count", 2000, "Images read per spec.", lower_bound=1)
  flags.DEFINE_integer("image_size", 28, "Side the images are resized to.",
                       lower_bound=1)
  flags.DEFINE_float("threshold", 127.5, "Pixel value above which a pixel "
                     "is ink (bright ink on a dark background).")


def ink_extent(images, threshold):
  """Height and width of each image's ink bounding box.

  Args:
    images: `[N, H, W, C]` array, channels averaged.
    threshold: a pixel above it is ink.

  Returns:
    `(heights, widths)`, two `[N]` int arrays; 0 for an image without ink.
  """
  ink = np.asarray(images, np.float64).mean(axis=-1) > threshold

  def extent(any_ink):  # [N, L] bool -> [N] span from first to last True
    length = any_ink.shape[1]
    first = np.argmax(any_ink, axis=1)
    last = length - 1 - np.argmax(any_ink[:, ::-1], axis=1)
    return np.where(any_ink.any(axis=1), last - first + 1, 0)

  return extent(ink.any(axis=2)), extent(ink.any(axis=1))


def slant_degrees(images):
  """The slant of each image's strokes, from its intensity moments.

  `atan(mu11 / mu02)`, with `mu11` the covariance of column and row and
  `mu02` the variance of the row, both weighted by intensity (channels
  averaged): 0 for an upright stroke, positive when the top leans right.

  Args:
    images: `[N, H, W, C]` array.

  Returns:
    `[N]` float64 angles in degrees; 0 for an image without ink.
  """
  weight = np.asarray(images, np.float64).mean(axis=-1)
  total = weight.sum(axis=(1, 2))
  safe = np.where(total > 0, total, 1.0)
  rows = np.arange(weight.shape[1], dtype=np.float64)[None, :, None]
  cols = np.arange(weight.shape[2], dtype=np.float64)[None, None, :]
  mean_row = (weight * rows).sum(axis=(1, 2)) / safe
  mean_col = (weight * cols).sum(axis=(1, 2)) / safe
  d_row = rows - mean_row[:, None, None]
  d_col = cols - mean_col[:, None, None]
  mu02 = (weight * d_row ** 2).sum(axis=(1, 2)) / safe
  # Rows grow downwards: a top leaning right has columns falling with rows.
  mu11 = -(weight * d_row * d_col).sum(axis=(1, 2)) / safe
  return np.where(total > 0, np.degrees(np.arctan2(mu11, mu02)), 0.0)


def main(argv):
  del argv
  if len(FLAGS.specs) < 2:
    raise app.UsageError(f"--specs: give two or more, got {FLAGS.specs}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import sources  # pylint: disable=g-import-not-at-top

  heights = {}
  print("| spec | images | height: mean / median | width: mean / median | "
        "abs slant (degrees): mean / 90th percentile |")
  print("|---|---|---|---|---|")
  for spec in FLAGS.specs:
    domain = sources.load_domain(spec, data_root=FLAGS.data_root,
                                 tfds_data_dir=FLAGS.tfds_data_dir)
    if domain.images is None or domain.images.ndim != 4:
      raise app.UsageError(f"--specs: {spec!r} is not an in-memory image set")
    images = tf.image.resize(domain.images[:FLAGS.count],
                             [FLAGS.image_size] * 2).numpy()
    height, width = ink_extent(images, FLAGS.threshold)
    slant = np.abs(slant_degrees(images))
    heights[spec] = height.mean()
    print(f"| {spec} | {len(images)} | {height.mean():.1f} / "
          f"{np.median(height):.0f} | {width.mean():.1f} / "
          f"{np.median(width):.0f} | {slant.mean():.1f} / "
          f"{np.percentile(slant, 90):.1f} |")
  first = FLAGS.specs[0]
  for spec in FLAGS.specs[1:]:
    print(f"mean height of {first} over {spec}: "
          f"{heights[first] / heights[spec]:.2f}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
