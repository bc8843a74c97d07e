"""Training precision: float32, or mixed bfloat16.

Under `mixed_bfloat16` the layers compute in bfloat16 and keep float32
weights. `SRDCModel` keeps in float32 what must not lose precision: the
logits (fc2), the losses, q, the centres, the per-sample tables and the
per-epoch state.
"""

import contextlib

import keras

PRECISIONS = ("float32", "mixed_bfloat16")


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
