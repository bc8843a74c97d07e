"""Image resizing and augmentation, as SRDC.md prescribes."""

import dataclasses
import math

import keras
import tensorflow as tf

# How translation and rotation fill the pixels they uncover: "zeros" (black,
# SHOT's digit protocol) or "reflect" (the image mirrored about its edge).
FILLS = ("zeros", "reflect")
# Colour augmentation in training: none; "channel_inversion": each channel
# replaced by 255 minus itself with probability 1/2, independently; or
# "channel_levels": each channel's range [0, 255] mapped linearly onto a
# random interval, either way round (`ImageTransform`).
COLOUR_AUGMENTATIONS = ("none", "channel_inversion", "channel_levels")


def decode_image(contents, channels):
  """Decodes an encoded image to `[H, W, channels]` uint8, the first frame
  of an animation: the one decoder of training, validation and serving.

  `tf.io.decode_image` converts channels for every format but WebP, whose
  decoder refuses `channels=3` for an image with alpha: WebP images are
  decoded as they are, then their alpha is dropped (and colour turned grey
  for `channels=1`).

  Args:
    contents: a scalar string tensor of encoded bytes.
    channels: 1 or 3.

  Returns:
    A uint8 tensor of static shape `[None, None, channels]`.
  """
  head = tf.strings.join([tf.strings.substr(contents, 0, 12), b"\0" * 12])
  is_webp = tf.logical_and(
      tf.equal(tf.strings.substr(head, 0, 4), b"RIFF"),
      tf.equal(tf.strings.substr(head, 8, 4), b"WEBP"))

  def webp():
    image = tf.io.decode_image(contents, expand_animations=False)[..., :3]
    image.set_shape([None, None, 3])
    return tf.image.rgb_to_grayscale(image) if channels == 1 else image

  image = tf.cond(is_webp, webp, lambda: tf.io.decode_image(
      contents, channels=channels, expand_animations=False))
  image.set_shape([None, None, channels])
  return image


@dataclasses.dataclass(frozen=True)
class ImageTransform:
  """How images are resized and augmented.

  With `resize_size`, the shorter side is resized to it and a square of
  `image_size` is cropped (random for training, central for evaluation):
  the ImageNet protocol of SRDC (256 then 224). Without it, images are
  resized straight to `image_size` (digits, synthetic data).

  Attributes:
    image_size: side of the square output.
    channels: 1 or 3.
    resize_size: shorter side before cropping, or None.
    random_flip: random horizontal flips in training.
    random_translate: in training, shift by up to this many pixels in each
      direction (pad by `fill`, crop at random: the digit protocol of SHOT).
    random_rotation: in training, rotate about the centre by an angle drawn
      uniformly from +-this many degrees (corners filled by `fill`).
    random_scale: in training, zoom about the centre by a factor drawn
      log-uniformly from `[1 / (1 + s), 1 + s]` (uncovered pixels filled by
      `fill`), for domains whose objects differ in size: USPS digits fill
      their frame, MNIST digits a 20x20 box of 28x28.
    random_shear: in training, slant horizontally by an angle drawn
      uniformly from +-this many degrees (each row shifted in proportion
      to its height above the centre), for domains whose handwriting is
      slanted differently: USPS digits were deslanted, MNIST digits not.
    fill: what translation, rotation, zoom and slant put where no pixel was,
      one of `FILLS`. "zeros" is neutral only on black backgrounds (MNIST,
      USPS): on a textured or coloured target its black borders are a
      feature of the augmented target images that the un-augmented ones
      lack, and target clustering can learn them instead of the content (see
      the README's hard shift). "reflect" mirrors the image about its edge
      (`d c b a | a b c d | d c b a`, TF's SYMMETRIC padding and Keras'
      "reflect" fill).
    colour_augmentation: one of `COLOUR_AUGMENTATIONS`. "channel_inversion"
      inverts each channel (`255 - x`) with probability 1/2, independently,
      before the geometric augmentation: a grey digit, bright on black,
      becomes any of the 8 saturated stroke/background colour pairs,
      dark-on-bright included (on a textured target such as MNIST-M the
      stroke is darker than its background wherever the texture is
      bright). Grey images replicated to 3 channels are inverted per
      channel too (`channels` = 3). "channel_levels" generalises it to
      any two levels: each channel's intensity `x` becomes
      `lo + (hi - lo) x / 255`, with `lo` and `hi` drawn uniformly from
      [0, 255] per channel and image, independently, so a grey digit gets
      any stroke and background colour, at any contrast (the channel is
      inverted when `lo > hi`, with probability 1/2 as with
      "channel_inversion"). On MNIST-M-like targets each channel's stroke
      and background levels vary with the texture beneath, from high
      contrast to none; the 8 saturated pairs of channel inversion are the
      corners of that range.
  """
  image_size: int
  channels: int = 3
  resize_size: int = None
  random_flip: bool = False
  random_translate: int = 0
  random_rotation: float = 0.0
  random_scale: float = 0.0
  random_shear: float = 0.0
  fill: str = "zeros"
  colour_augmentation: str = "none"

  def __post_init__(self):
    if self.image_size <= 0:
      raise ValueError(f"image_size must be > 0, got {self.image_size!r}")
    if self.channels not in (1, 3):
      raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
    if self.resize_size is not None and self.resize_size < self.image_size:
      raise ValueError(
          f"resize_size {self.resize_size} is smaller than image_size "
          f"{self.image_size}")
    if self.random_translate < 0:
      raise ValueError(
          f"random_translate must be >= 0, got {self.random_translate!r}")
    if not 0.0 <= self.random_rotation <= 180.0:
      raise ValueError(
          f"random_rotation must be in [0, 180] degrees, got "
          f"{self.random_rotation!r}")
    if not 0.0 <= self.random_scale <= 1.0:
      raise ValueError(
          f"random_scale must be in [0, 1] (zooms of 1/2 to 2), got "
          f"{self.random_scale!r}")
    if not 0.0 <= self.random_shear < 90.0:
      raise ValueError(
          f"random_shear must be in [0, 90) degrees, got "
          f"{self.random_shear!r}")
    if self.colour_augmentation not in COLOUR_AUGMENTATIONS:
      raise ValueError(f"colour_augmentation must be one of "
                       f"{COLOUR_AUGMENTATIONS}, got "
                       f"{self.colour_augmentation!r}")
    if self.fill not in FILLS:
      raise ValueError(f"fill must be one of {FILLS}, got {self.fill!r}")
    if self.fill == "reflect" and self.random_translate > self.image_size:
      raise ValueError(
          f"fill 'reflect' mirrors at most one image side: random_translate "
          f"{self.random_translate} is larger than image_size "
          f"{self.image_size}")

  @property
  def shape(self):
    return (self.image_size, self.image_size, self.channels)

  def _resize_shorter(self, image):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = float(self.resize_size) / tf.reduce_min(shape)
    size = tf.cast(tf.round(shape * scale), tf.int32)
    return tf.image.resize(image, tf.maximum(size, self.resize_size))

  def train(self, image, seed):
    """Training view of one uint8 image as float32 in [0, 255].

    Args:
      image: `[H, W, C]` uint8.
      seed: `[2]` int tensor for the stateless random ops, so augmentation
        is reproducible whatever the parallelism.
    """
    if self.resize_size is None:
      image = tf.image.resize(image, [self.image_size] * 2)
    else:
      image = self._resize_shorter(image)
      image = tf.image.stateless_random_crop(
          image, self.shape, seed=seed)
    if self.colour_augmentation == "channel_inversion":
      image = self._invert_channels(image, seed + 4)
    elif self.colour_augmentation == "channel_levels":
      image = self._remap_channel_levels(image, seed + 4)
    if self.random_flip:
      image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    if self.random_translate:
      image = self._translate(image, seed + 2)
    if self.random_rotation or self.random_scale or self.random_shear:
      image = self._warp(image, seed + 3)
    return tf.ensure_shape(tf.cast(image, tf.float32), self.shape)

  def _invert_channels(self, image, seed):
    image = tf.cast(image, tf.float32)
    invert = tf.random.stateless_uniform([self.channels], seed) < 0.5
    return tf.where(invert, 255.0 - image, image)

  def _remap_channel_levels(self, image, seed):
    levels = tf.random.stateless_uniform([2, self.channels], seed, 0.0, 255.0)
    low, high = levels[0], levels[1]
    return low + (high - low) * tf.cast(image, tf.float32) / 255.0

  def _translate(self, image, seed):
    pad = self.random_translate
    image = tf.pad(tf.cast(image, tf.float32), [[pad, pad], [pad, pad], [0, 0]],
                   mode="SYMMETRIC" if self.fill == "reflect" else "CONSTANT")
    return tf.image.stateless_random_crop(image, self.shape, seed=seed)

  def _warp(self, image, seed):
    limit = math.radians(self.random_rotation)
    angle = tf.random.stateless_uniform([], seed, -limit, limit)
    log_limit = math.log1p(self.random_scale)
    scale = tf.exp(tf.random.stateless_uniform(
        [], seed + 5, -log_limit, log_limit))
    shear_limit = math.radians(self.random_shear)
    shear = tf.random.stateless_uniform([], seed + 6, -shear_limit,
                                        shear_limit)
    transform = warp_transform(angle, self.image_size, scale, shear)
    return keras.ops.image.affine_transform(
        tf.cast(image, tf.float32), transform, interpolation="bilinear",
        fill_mode="reflect" if self.fill == "reflect" else "constant",
        fill_value=0.0, data_format="channels_last")

  def eval(self, image):
    """Evaluation view: resize (and centre crop), no randomness."""
    if self.resize_size is None:
      image = tf.image.resize(image, [self.image_size] * 2)
    else:
      image = self._resize_shorter(image)
      shape = tf.shape(image)
      top = (shape[0] - self.image_size) // 2
      left = (shape[1] - self.image_size) // 2
      image = image[top:top + self.image_size, left:left + self.image_size]
    return tf.ensure_shape(tf.cast(image, tf.float32), self.shape)


def warp_transform(angle, size, scale=1.0, shear=0.0):
  """The affine transform that rotates, zooms and slants a square image
  about its centre.

  Args:
    angle: scalar rotation in radians (counter-clockwise as displayed).
    size: side of the square image, in pixels.
    scale: scalar zoom factor: above 1 the content grows, below 1 it
      shrinks.
    shear: scalar horizontal slant in radians: each row moves sideways by
      `tan(shear)` times its distance from the centre row.

  Returns:
    A `[8]` float32 tensor `[a0, a1, a2, b0, b1, b2, 0, 0]` in the format of
    `keras.ops.image.affine_transform`: it maps each output pixel `(x, y)`
    to the input point `(a0 x + a1 y + a2, b0 x + b1 y + b2)`.
  """
  angle = tf.cast(angle, tf.float32)
  slope = tf.tan(tf.cast(shear, tf.float32))
  centre = (size - 1) / 2.0
  # The output pixel p reads the input at centre + R S (p - centre) / scale,
  # R the rotation, S = [[1, slope], [0, 1]] the slant.
  cos = tf.cos(angle) / scale
  sin = tf.sin(angle) / scale
  a0, a1 = cos, cos * slope - sin
  b0, b1 = sin, sin * slope + cos
  return tf.stack([
      a0, a1, centre - a0 * centre - a1 * centre,
      b0, b1, centre - b0 * centre - b1 * centre,
      tf.constant(0.0), tf.constant(0.0)])
