r"""How large are the objects of two domains, once resized to the network's
input? Label-free: it reads images, never labels.

For the first --count images of each spec, resized as evaluation resizes
them (`--image_size`), it prints the mean and median height and width of
the ink's bounding box (the rows and columns holding a pixel brighter than
--threshold, channels averaged) and the ratio of the two domains' mean
heights. USPS digits fill their 16x16 frame, MNIST digits a 20x20 box of
28x28: this ratio is what `--random_scale=0.4` of the digits flagfiles
covers (zooms of 1/1.4 to 1.4).

  python benchmarks/ink_extent.py --tfds_data_dir=$DATA_ROOT/tfds \
    --specs=tfds:usps:train,tfds:mnist:train
"""

from absl import app
from absl import flags
import numpy as np

import benchlib  # noqa: F401  Puts the repository on sys.path.
from srdc_tf import data_flags

FLAGS = flags.FLAGS
flags.DEFINE_list("specs", ["tfds:usps:train", "tfds:mnist:train"],
                  "Two or more data specs (as --source and --target).")
data_flags.define_data_location_flags()
flags.DEFINE_integer("count", 2000, "Images read per spec.", lower_bound=1)
flags.DEFINE_integer("image_size", 28, "Side the images are resized to.",
                     lower_bound=1)
flags.DEFINE_float("threshold", 127.5, "Pixel value above which a pixel is "
                   "ink (bright ink on a dark background).")


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


def main(argv):
  del argv
  if len(FLAGS.specs) < 2:
    raise app.UsageError(f"--specs: give two or more, got {FLAGS.specs}")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from srdc_tf.data import sources  # pylint: disable=g-import-not-at-top

  heights = {}
  print("| spec | images | height: mean / median | width: mean / median |")
  print("|---|---|---|---|")
  for spec in FLAGS.specs:
    domain = sources.load_domain(spec, data_root=FLAGS.data_root,
                                 tfds_data_dir=FLAGS.tfds_data_dir)
    if domain.images is None or domain.images.ndim != 4:
      raise app.UsageError(f"--specs: {spec!r} is not an in-memory image set")
    images = tf.image.resize(domain.images[:FLAGS.count],
                             [FLAGS.image_size] * 2).numpy()
    height, width = ink_extent(images, FLAGS.threshold)
    heights[spec] = height.mean()
    print(f"| {spec} | {len(images)} | {height.mean():.1f} / "
          f"{np.median(height):.0f} | {width.mean():.1f} / "
          f"{np.median(width):.0f} |")
  first = FLAGS.specs[0]
  for spec in FLAGS.specs[1:]:
    print(f"mean height of {first} over {spec}: "
          f"{heights[first] / heights[spec]:.2f}")


if __name__ == "__main__":
  app.run(main)
