"""An array in a `.npy` file whose rows are read from the file when asked for.

A feature cache can be larger than memory (fine-tuning on VisDA-2017 would
cache about 19 GB of activations). Reading it whole would not fit, and
mapping it into memory (`np.load(mmap_mode="r")`) crashes the process with
a bus error when the file is truncated under it (a copy over it, a full
disk elsewhere). Positional reads of one row at a time keep memory to what
the pipeline holds, and turn a file changed in use into an error naming it.
"""

import os

import numpy as np

_CHUNK_BYTES = 1 << 30
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class NpyRows:
  """A read-only `[N, ...]` array stored in a `.npy` file, read by rows.

  Holds the file open, so the rows stay those of the file opened even if
  it is replaced (renamed over) or removed later. Supports `len`, `shape`,
  `dtype`, `ndim`, `nbytes`, integer indexing (one positional read) and
  `np.asarray` (the whole array).

  Args:
    path: the `.npy` file.

  Raises:
    ValueError: the file is not a C-ordered `.npy` array of at least one
      dimension, or is shorter than its header says (truncated).
  """

  def __init__(self, path):
    self.path = os.fspath(path)
    with open(self.path, "rb") as header:
      version = np.lib.format.read_magic(header)
      read_header = _HEADER_READERS.get(version)
      if read_header is None:
        raise ValueError(f"{self.path!r}: .npy format version {version} is "
                         f"not one of {sorted(_HEADER_READERS)}")
      shape, fortran_order, dtype = read_header(header)
      offset = header.tell()
    if fortran_order or not shape or dtype.hasobject:
      raise ValueError(f"{self.path!r} is not a C-ordered numeric array of "
                       f"rows (shape {shape}, dtype {dtype})")
    self.shape, self.dtype, self._offset = tuple(shape), dtype, offset
    self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    size = os.path.getsize(self.path)
    if size < offset + self.nbytes:
      raise ValueError(f"{self.path!r} is truncated: {size} bytes, its "
                       f"header needs {offset + self.nbytes}")
    # Closed with this object; positional reads never move its offset, so
    # the pipeline's threads share it.
    self._file = open(self.path, "rb", buffering=0)  # pylint: disable=consider-using-with

  @property
  def ndim(self):
    return len(self.shape)

  @property
  def nbytes(self):
    return self.shape[0] * self._row_bytes

  def __len__(self):
    return self.shape[0]

  def _read_into(self, out, offset):
    """Fills the array `out` with the file's bytes from `offset` (past the
    header), in reads of at most `_CHUNK_BYTES` (one read returns at most
    about 2 GB on Linux)."""
    buffer = memoryview(out).cast("B")
    done = 0
    while done < len(buffer):
      part = buffer[done:done + _CHUNK_BYTES]
      position = self._offset + offset + done
      if hasattr(os, "preadv"):
        got = os.preadv(self._file.fileno(), [part], position)
      else:
        data = os.pread(self._file.fileno(), len(part), position)
        part[:len(data)] = data
        got = len(data)
      if got == 0:
        raise OSError(f"{self.path!r} changed while in use: it ends before "
                      f"byte {position + len(part)}")
      done += got
    return out

  def row(self, index):
    """Row `index` (an int in [0, N)), as a new array."""
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"row {index} of {self.path!r}, which has "
                       f"{len(self)} rows")
    return self._read_into(np.empty(self.shape[1:], self.dtype),
                           index * self._row_bytes)

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      return self.row(key if key >= 0 else key + len(self))
    return np.asarray(self)[key]

  def __array__(self, dtype=None, copy=None):
    del copy  # Always a new array.
    array = self._read_into(np.empty(self.shape, self.dtype), 0)
    return array if dtype is None else array.astype(dtype, copy=False)
