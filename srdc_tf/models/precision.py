"""Training precision: float32, or mixed bfloat16.

Under `mixed_bfloat16` the layers compute in bfloat16 and keep float32
weights. `SRDCModel` keeps in float32 what must not lose precision: the
logits (fc2), the losses, q, the centres, the per-sample tables and the
per-epoch state. In the backbones, only the convolutions and dense layers
compute in bfloat16 (see `compute_elementwise_in_float32`).
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16")

# CPU features (as /proc/cpuinfo and lscpu name them) with bfloat16
# arithmetic in hardware; without them oneDNN emulates it, and a
# mixed_bfloat16 ResNet-50 step was measured 12x slower than float32 on an
# AVX2-only AMD EPYC (README, Performance).
NATIVE_BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# On CPU only TensorFlow's convolutions and matmuls gain from bfloat16
# (oneDNN's AVX512-BF16/AMX kernels); its bfloat16 kernels for these
# layers are slower than the float32 ones, and BatchNormalization casts to
# float32 anyway (README, Performance).
ELEMENTWISE_LAYERS = (keras.layers.BatchNormalization,
                      keras.layers.Activation, keras.layers.ReLU,
                      keras.layers.Add)


def cpu_flags(cpuinfo="/proc/cpuinfo"):
  """The CPU's feature flags (empty when `cpuinfo` cannot be read)."""
  try:
    with open(cpuinfo) as lines:
      for line in lines:
        if line.startswith("flags"):
          return frozenset(line.split(":", 1)[1].split())
  except OSError:
    pass
  return frozenset()


def slow_precision_reason(precision, flags, has_gpu=False):
  """Why `precision` would be slower than float32 here, or None.

  Args:
    precision: one of `PRECISIONS`.
    flags: the CPU's feature flags (`cpu_flags()`).
    has_gpu: whether TensorFlow sees a GPU (which has its own bfloat16).

  Returns:
    A sentence for the user, or None when nothing speaks against it.
  """
  if precision != "mixed_bfloat16" or has_gpu:
    return None
  if any(flag in flags for flag in NATIVE_BFLOAT16_CPU_FLAGS):
    return None
  return ("--precision=mixed_bfloat16 on a CPU without native bfloat16 ("
          f"none of {', '.join(NATIVE_BFLOAT16_CPU_FLAGS)} among its flags): "
          "bfloat16 is emulated, and a ResNet-50 step was measured 12x "
          "slower than float32 on such a CPU. Use --precision=float32, or "
          "--force_precision to run it anyway")


@contextlib.contextmanager
def dtype_policy(precision):
  """Keras layers created inside take the dtype policy `precision`; the
  previous global policy is restored on exit (a layer keeps the policy it
  was created with, and saves it in its config).

  Args:
    precision: one of `PRECISIONS`.

  Raises:
    ValueError: an unknown precision.
  """
  if precision not in PRECISIONS:
    raise ValueError(
        f"--precision must be one of {PRECISIONS}, got {precision!r}")
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def compute_elementwise_in_float32(model):
  """Sets the normalisation, activation and add layers of `model` (nested
  ones too) to compute in float32 when they compute in bfloat16; the
  convolutions keep bfloat16 and cast their inputs. The policies are saved
  with the model.

  Returns:
    The number of layers changed.
  """
  changed = 0
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if (isinstance(layer, ELEMENTWISE_LAYERS)
        and layer.dtype_policy.compute_dtype == "bfloat16"):
      layer.dtype_policy = keras.DTypePolicy("float32")
      changed += 1
  return changed
