"""Handing numpy features to TensorFlow without copying them.

`tf.convert_to_tensor` copies a numpy array, even a float32 one: at
DomainNet scale (120k x 2048 features of each domain) one copy of the
source and target `f` is 2 GB. A float32, C-contiguous array whose data
start on a 64-byte boundary (what TensorFlow's CPU kernels require of a
tensor's buffer) can be shared instead, through DLPack. `aligned_empty`
allocates such arrays; `as_float32` shares them and converts anything else.
"""

import numpy as np
import tensorflow as tf

ALIGNMENT = 64  # Bytes; EIGEN_MAX_ALIGN_BYTES of TensorFlow's CPU build.


def aligned_empty(shape, dtype=np.float32):
  """An uninitialised C-contiguous numpy array whose data are 64-byte
  aligned, so that `as_float32` can share it with TensorFlow."""
  dtype = np.dtype(dtype)
  size = int(np.prod(shape)) * dtype.itemsize
  buffer = np.empty(size + ALIGNMENT, np.uint8)
  offset = (-buffer.ctypes.data) % ALIGNMENT
  return buffer[offset:offset + size].view(dtype).reshape(shape)


def _shareable(value):
  return (isinstance(value, np.ndarray) and value.dtype == np.float32
          and value.size > 0 and value.flags.c_contiguous
          and value.flags.writeable
          and value.ctypes.data % ALIGNMENT == 0)


def as_float32(value):
  """`value` as a float32 tensor, sharing the memory of an aligned float32
  numpy array (see the module docstring) instead of copying it.

  The tensor then reads the array: do not write to the array while the
  tensor is in use.
  """
  if _shareable(value):
    try:
      return tf.experimental.dlpack.from_dlpack(value.__dlpack__())
    except (BufferError, TypeError, ValueError):  # Not exportable: copy.
      pass
  return tf.cast(value, tf.float32)
