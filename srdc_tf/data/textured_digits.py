"""A hard shift generated in code: digits composited onto colour textures.

MNIST-M (Ganin and Lempitsky, ICML 2015) blends every MNIST digit with a
colour patch of a natural image, `out = |patch - digit|` per channel: the
background is the patch and the stroke its inverted colour, so background
colour, contrast and texture change from image to image and the stroke is
only as visible as the patch is far from mid-grey. Natural-image patches
cannot be had offline, so the patches here are procedural, with the same
blend:

- two scalar fields per image, each a sum of `NUM_WAVES` sinusoids of
  random orientation, frequency and phase plus noise smoothed at the scales
  `NOISE_GRIDS` (bilinearly upsampled random grids), with random weights,
  then stretched to [0, 1];
- a random palette of three colours per image, each channel uniform on
  [0, `PALETTE_HIGH`]: the first field mixes the first two colours, the
  second blends in the third (up to half);
- a little per-pixel grain (standard deviation `GRAIN`).

The palette spans MNIST-M's brightness (each channel up to
`PALETTE_HIGH` = 255), so the stroke, `255 - texture`, is darker than its
background on bright textures, as in MNIST-M. Measured with
flags/digits/mnist2textured.cfg, seed 0, the source-only baseline
collapses (9.8%, every target image predicted "8") because its fc1
BatchNorm statistics are the source's: re-estimated on the un-augmented
target train split (a diagnostic, AdaBN) the same model scores 43.2% on
the test split, close to what AdaBN gives on the real MNIST-M (37.8%).
A softer version (channels up to 128, the stroke always brighter than its
background) was tried once and left: source-only 11.8%, but AdaBN 85.2%
and SRDC 97.5%, far easier than MNIST-M.

`textures(count, height, width, seed)` is a pure function of its
arguments, and texture `i` depends on `(seed, i)` only (the random draws
are made in blocks of `BLOCK` images, always whole), so the first `n`
textures are the same whatever the count. `composite(digits, seed)` blends
them with `digits`. The spec `textured:<tfds name>[:<split>]` of
`srdc_tf.data.sources` composites a TFDS split with `split_seed(name,
split)`: fixed per split, never the run's `--seed`, so every run and every
seed adapts to, and is scored on, the same target images.
"""

import zlib

import numpy as np

NUM_WAVES = 3
PALETTE_HIGH = 255.0
NOISE_GRIDS = (3, 6, 12)
BLOCK = 2048
GRAIN = 6.0
_FIELDS = 2


def split_seed(name, split):
  """The fixed seed of the textured version of TFDS `name`'s `split`: the
  CRC-32 of `"<name>:<split>"` (stable across processes and versions)."""
  return zlib.crc32(f"{name}:{split}".encode("utf-8"))


def _interpolation(size, grid):
  """`[size, grid]` bilinear weights that upsample `grid` points (spanning
  the image, corners included) to `size` pixels."""
  position = np.linspace(0.0, grid - 1.0, size)
  low = np.minimum(np.floor(position).astype(int), grid - 2)
  frac = position - low
  weights = np.zeros((size, grid), np.float32)
  weights[np.arange(size), low] = 1.0 - frac
  weights[np.arange(size), low + 1] = frac
  return weights


def _block_draws(seed, block, height, width):
  """All random draws of the `BLOCK` textures of block `block`."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
  shape = (BLOCK, _FIELDS, NUM_WAVES)
  return {
      "angle": rng.uniform(0.0, np.pi, shape),
      # Cycles per image side: from a gentle gradient to fine stripes.
      "frequency": rng.uniform(0.3, 4.0, shape),
      "phase": rng.uniform(0.0, 2 * np.pi, shape),
      "wave_weight": rng.uniform(0.0, 1.0, shape),
      "noise_weight": rng.uniform(0.0, 1.0, (BLOCK, _FIELDS, len(NOISE_GRIDS))),
      "noise": [rng.standard_normal((BLOCK, _FIELDS, g, g), np.float32)
                for g in NOISE_GRIDS],
      "palette": rng.uniform(0.0, PALETTE_HIGH, (BLOCK, 3, 3)),
      "third_colour": rng.uniform(0.0, 0.5, BLOCK),
      # Uniform (cheaper to draw than normal), in [0, 1).
      "grain": rng.random((BLOCK, height, width, 3), np.float32),
  }


def _block_textures(draws, count, height, width):
  """The first `count` textures of a block, `[count, H, W, 3]` float32."""
  take = lambda x: np.asarray(x[:count], np.float32)
  y = np.linspace(0.0, 1.0, height, dtype=np.float32)
  x = np.linspace(0.0, 1.0, width, dtype=np.float32)
  angle, frequency = take(draws["angle"]), take(draws["frequency"])
  phase, weight = take(draws["phase"]), take(draws["wave_weight"])
  # sin(kx x + ky y + phase) = sin(kx x) cos(ky y + phase)
  #                           + cos(kx x) sin(ky y + phase): each wave is two
  # outer products, and a field one batched [H, 2K] @ [2K, W] product.
  kx = (2 * np.pi * frequency * np.cos(angle))[..., None]  # [n, F, K, 1]
  ky = (2 * np.pi * frequency * np.sin(angle))[..., None]
  along_y = ky * y + phase[..., None]  # [n, F, K, H]
  along_x = kx * x  # [n, F, K, W]
  weight = weight[..., None]
  rows = np.concatenate([weight * np.cos(along_y), weight * np.sin(along_y)],
                        axis=2)  # [n, F, 2K, H]
  cols = np.concatenate([np.sin(along_x), np.cos(along_x)], axis=2)
  field = np.matmul(rows.transpose(0, 1, 3, 2), cols)  # [n, F, H, W]
  # Noise weights 1.5, 0.75, 0.375 of a unit wave from coarse to fine, times
  # a random factor: some images are smooth, some busy.
  noise_weight = take(draws["noise_weight"])
  for s, (grid, noise) in enumerate(zip(NOISE_GRIDS, draws["noise"])):
    up_rows, up_cols = _interpolation(height, grid), _interpolation(width, grid)
    smooth = np.matmul(np.matmul(up_rows, noise[:count]), up_cols.T)
    field += (1.5 * 0.5 ** s * noise_weight[:, :, s])[..., None, None] * smooth
  flat = field.reshape(count, _FIELDS, height * width)
  low, high = flat.min(axis=-1), flat.max(axis=-1)
  field -= low[..., None, None]
  field /= np.maximum(high - low, 1e-6)[..., None, None]
  # Colour: the first field mixes colours 0 and 1, the second blends in
  # colour 2 (up to `third_colour`). Expanded, each channel is a linear
  # combination of 1, mix, blend and mix * blend: one batched product.
  pixels = height * width
  mix = field[:, 0].reshape(count, pixels)
  blend = field[:, 1].reshape(count, pixels) * take(
      draws["third_colour"])[:, None]
  basis = np.stack([np.ones_like(mix), mix, blend, mix * blend], axis=-1)
  palette = take(draws["palette"])  # [n, colour, channel]
  # Grain of standard deviation GRAIN, uniform on +-sqrt(3) GRAIN: its
  # offset goes into the constant term.
  offset = np.sqrt(3) * GRAIN
  coefficients = np.stack([
      palette[:, 0] - offset, palette[:, 1] - palette[:, 0],
      palette[:, 2] - palette[:, 0], palette[:, 0] - palette[:, 1]], axis=1)
  texture = np.matmul(basis, coefficients).reshape(count, height, width, 3)
  grain = draws["grain"][:count]
  grain *= 2 * offset
  texture += grain
  return texture


def textures(count, height, width, seed):
  """`count` procedural colour textures, `[count, height, width, 3]` uint8.

  Args:
    count: number of textures, >= 0.
    height: image height, >= 2.
    width: image width, >= 2.
    seed: a non-negative integer.

  Returns:
    The textures; texture `i` depends on `(seed, i)` (and the size) only.
  """
  if count < 0 or height < 2 or width < 2:
    raise ValueError(
        f"textures need count >= 0 and sides >= 2, got {count!r} textures "
        f"of {height!r}x{width!r}")
  out = np.empty((count, height, width, 3), np.uint8)
  for block, start in enumerate(range(0, count, BLOCK)):
    n = min(BLOCK, count - start)
    draws = _block_draws(seed, block, height, width)
    texture = _block_textures(draws, n, height, width)
    out[start:start + n] = np.clip(np.rint(texture), 0, 255)
  return out


def composite(digits, seed):
  """MNIST-M's blend of grey digits with procedural colour textures.

  Args:
    digits: `[N, H, W]` or `[N, H, W, 1]` uint8 grey digits (bright strokes
      on black, as MNIST).
    seed: a non-negative integer; the same seed gives the same images.

  Returns:
    `[N, H, W, 3]` uint8: `|texture - digit|` per channel, with
    `textures(N, H, W, seed)`.
  """
  digits = np.asarray(digits)
  if digits.ndim == 4 and digits.shape[-1] == 1:
    digits = digits[..., 0]
  if digits.ndim != 3 or digits.dtype != np.uint8:
    raise ValueError(
        f"composite needs [N, H, W] or [N, H, W, 1] uint8 grey digits, got "
        f"shape {digits.shape} and dtype {digits.dtype}")
  count, height, width = digits.shape
  background = textures(count, height, width, seed)
  out = np.empty_like(background)
  for start in range(0, count, BLOCK):  # Bounded int16 temporaries.
    part = slice(start, start + BLOCK)
    out[part] = np.abs(background[part].astype(np.int16)
                       - digits[part, ..., None].astype(np.int16))
  return out
