"""`NpyRows`: a `.npy` array read row by row, and a file changed under it
named in an error rather than a crash."""

import os

import numpy as np
import pytest

from srdc_tf.data import npy_rows


def _saved(tmp_path, array, version=None, name="rows.npy"):
  path = tmp_path / name
  with open(path, "wb") as out:
    np.lib.format.write_array(out, array, version=version)
  return path


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 2, 3, 4)])
def test_rows_and_whole_equal_the_saved_array(tmp_path, version, shape):
  array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 7
  rows = npy_rows.NpyRows(_saved(tmp_path, array, version))
  assert (rows.shape, rows.dtype, rows.ndim, len(rows), rows.nbytes) == (
      array.shape, array.dtype, array.ndim, len(array), array.nbytes)
  for index in range(len(array)):
    np.testing.assert_array_equal(rows[index], array[index])
  np.testing.assert_array_equal(rows[-1], array[-1])
  np.testing.assert_array_equal(np.asarray(rows), array)
  np.testing.assert_array_equal(rows[[4, 0]], array[[4, 0]])
  with pytest.raises(IndexError, match="row 5 of .*rows.npy.*has 5 rows"):
    rows.row(5)


def test_a_truncated_file_is_refused_when_opened(tmp_path):
  path = _saved(tmp_path, np.ones((4, 8), np.float32))
  with open(path, "r+b") as file:
    file.truncate(os.path.getsize(path) - 1)
  with pytest.raises(ValueError, match=r"rows.npy' is truncated: \d+ bytes"):
    npy_rows.NpyRows(path)


def test_a_file_truncated_in_use_is_an_error_naming_it(tmp_path):
  # A memory-mapped array would end the process with a bus error here.
  path = _saved(tmp_path, np.ones((4, 8), np.float32))
  rows = npy_rows.NpyRows(path)
  np.testing.assert_array_equal(rows[3], np.ones(8))
  with open(path, "r+b") as file:
    file.truncate(100)
  with pytest.raises(OSError, match=r"rows.npy. changed while in use: it ends before"):
    rows.row(3)


def test_a_replaced_file_keeps_the_rows_opened(tmp_path):
  # A cache computed again is renamed over the old one (os.replace): a run
  # reading the old one keeps reading it.
  path = _saved(tmp_path, np.zeros((3, 2), np.float32))
  rows = npy_rows.NpyRows(path)
  os.replace(_saved(tmp_path, np.ones((3, 2), np.float32), name="new.npy"),
             path)
  np.testing.assert_array_equal(np.asarray(rows), np.zeros((3, 2)))


@pytest.mark.parametrize("array", [np.ones((2, 3), order="F"), np.float32(1),
                                   np.array([None, 1], dtype=object)],
                         ids=["fortran", "scalar", "objects"])
def test_arrays_that_are_not_rows_are_refused(tmp_path, array):
  path = _saved(tmp_path, np.asarray(array, order="K"))
  with pytest.raises(ValueError, match="rows.npy' is not a C-ordered"):
    npy_rows.NpyRows(path)


def test_reads_larger_than_a_chunk_are_whole(tmp_path, monkeypatch):
  # One read returns at most about 2 GB on Linux: reads go in chunks.
  monkeypatch.setattr(npy_rows, "_CHUNK_BYTES", 7)
  array = np.arange(60, dtype=np.float64).reshape(4, 15)
  rows = npy_rows.NpyRows(_saved(tmp_path, array))
  np.testing.assert_array_equal(rows[2], array[2])
  np.testing.assert_array_equal(np.asarray(rows), array)
