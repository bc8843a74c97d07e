"""The built-in two-domain dataset: shapes, drawn in two styles.

Source ("sketch"): light shapes on a dark, plain background. Target
("scene"): the same shape classes in random colours, lighter than a
textured colour background, blurred and noisier. The class is the shape in
both; only the style shifts, so a source-only classifier degrades on the
target while the target keeps a cluster per class. Generated in code from a
seed, no download.
"""

import numpy as np

from srdc_tf.data import domain as domain_lib

CLASS_NAMES = ("disc", "square", "triangle", "cross", "ring", "bar")
IMAGE_SIZE = 32


def _shape_mask(kind, size, rng):
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  radius = rng.uniform(0.22, 0.34) * size
  cy, cx = rng.uniform(0.38, 0.62, size=2) * size
  angle = rng.uniform(-0.4, 0.4)
  dy, dx = yy - cy, xx - cx
  ry = np.cos(angle) * dy - np.sin(angle) * dx
  rx = np.sin(angle) * dy + np.cos(angle) * dx
  if kind == "disc":
    return (dy ** 2 + dx ** 2) <= radius ** 2
  if kind == "ring":
    distance = np.sqrt(dy ** 2 + dx ** 2)
    return (distance <= radius) & (distance >= radius * 0.6)
  if kind == "square":
    return (np.abs(ry) <= radius * 0.85) & (np.abs(rx) <= radius * 0.85)
  if kind == "triangle":
    top = -radius
    return (ry >= top) & (ry <= radius * 0.8) & (
        np.abs(rx) <= (ry - top) * 0.6)
  if kind == "cross":
    width = radius * 0.3
    return ((np.abs(ry) <= width) & (np.abs(rx) <= radius)) | (
        (np.abs(rx) <= width) & (np.abs(ry) <= radius))
  if kind == "bar":
    return (np.abs(ry) <= radius * 0.25) & (np.abs(rx) <= radius * 1.1)
  raise ValueError(f"unknown shape {kind!r}")


def _blur(image):
  padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
  h, w = image.shape[:2]
  return sum(padded[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9


def _render(mask, style, rng):
  size = mask.shape[0]
  if style == "source":
    background = np.full((size, size, 3), rng.uniform(0, 40))
    colour = rng.uniform(200, 255, size=1).repeat(3)
    noise = 8.0
  else:
    base = rng.uniform(20, 150, size=3)
    gradient = np.linspace(-40, 40, size)[:, None, None] * rng.choice(
        [-1, 1], size=3)
    texture = rng.normal(0, 18, size=(size // 4, size // 4, 3)).repeat(
        4, 0).repeat(4, 1)
    background = base + gradient + texture
    colour = np.clip(base + rng.uniform(50, 110, 3), 0, 255)
    noise = 20.0
  image = np.where(mask[..., None], colour, background)
  if style == "target":
    image = _blur(image)
  image = image + rng.normal(0, noise, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def make_domain(style, examples_per_class, seed):
  """One synthetic domain.

  Args:
    style: "source" or "target".
    examples_per_class: images per class, > 0.
    seed: the random seed.

  Returns:
    A `Domain` of 32x32 RGB uint8 images, classes `CLASS_NAMES`, shuffled.
  """
  if style not in ("source", "target"):
    raise ValueError(f"style must be 'source' or 'target', got {style!r}")
  if examples_per_class <= 0:
    raise ValueError(
        f"examples_per_class must be > 0, got {examples_per_class!r}")
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(len(CLASS_NAMES)), examples_per_class)
  rng.shuffle(labels)
  images = np.stack([
      _render(_shape_mask(CLASS_NAMES[label], IMAGE_SIZE, rng), style, rng)
      for label in labels])
  return domain_lib.Domain(name=f"synthetic/{style}",
                           class_names=CLASS_NAMES,
                           labels=labels.astype(np.int32), images=images)
