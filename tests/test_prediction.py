"""The pure logic of srdc-predict: which files, the ranking, the rows."""

import numpy as np
import pytest

from srdc_tf import prediction

CLASSES = ("cat", "dog", "fox")


@pytest.mark.parametrize("probabilities, k, ids", [
    ([[0.1, 0.7, 0.2]], 2, [[1, 2]]),
    ([[0.1, 0.7, 0.2]], 3, [[1, 2, 0]]),
    ([[0.1, 0.7, 0.2]], 9, [[1, 2, 0]]),  # More than K gives K.
    ([[0.4, 0.2, 0.4]], 3, [[0, 2, 1]]),  # Ties: the lower class id first.
    ([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], 1, [[2], [0]]),
])
def test_top_k_ranks_most_probable_first(probabilities, k, ids):
  got_ids, got_values = prediction.top_k(np.array(probabilities), k)
  np.testing.assert_array_equal(got_ids, ids)
  np.testing.assert_allclose(
      got_values, np.take_along_axis(np.array(probabilities), got_ids, 1))


@pytest.mark.parametrize("probabilities, k, message", [
    (np.ones(3), 1, "must be \\[N, K\\]"),
    (np.ones((2, 3)), 0, "k must be >= 1, got 0"),
])
def test_top_k_refuses_bad_arguments(probabilities, k, message):
  with pytest.raises(ValueError, match=message):
    prediction.top_k(probabilities, k)


def test_rows_hold_the_prediction_and_the_top_k():
  rows = prediction.prediction_rows(["a.png", "b.png"],
                                    np.array([[0.1, 0.7, 0.2],
                                              [0.5, 0.25, 0.25]]),
                                    CLASSES, 2)
  assert list(rows[0]) == prediction.csv_columns(2)
  assert rows[0] == {"path": "a.png", "class_name": "dog",
                     "probability": "0.700000", "top1_class": "dog",
                     "top1_probability": "0.700000", "top2_class": "fox",
                     "top2_probability": "0.200000", "error": ""}
  assert rows[1]["class_name"] == "cat" and rows[1]["top2_class"] == "dog"


def test_an_error_row_names_the_file_and_its_problem():
  row = prediction.error_row("bad.jpg", "empty file", 2)
  assert list(row) == prediction.csv_columns(2)
  assert row["path"] == "bad.jpg" and row["error"] == "empty file"
  assert row["class_name"] == row["top1_class"] == ""


def test_rows_refuse_class_names_of_another_model():
  with pytest.raises(ValueError, match="2 class names for probabilities of 3"):
    prediction.prediction_rows(["a"], np.ones((1, 3)) / 3, CLASSES[:2], 1)


def test_csv_columns():
  assert prediction.csv_columns(1) == ["path", "class_name", "probability",
                                       "top1_class", "top1_probability",
                                       "error"]


def test_a_folder_lists_every_visible_file_recursively(tmp_path):
  for name in ("b.png", "a.jpg", "sub/c.png", ".hidden.png", ".git/x.png",
               "notes.txt"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"x")
  paths = prediction.list_inputs(str(tmp_path))
  assert [p[len(str(tmp_path)) + 1:] for p in paths] == [
      "a.jpg", "b.png", "notes.txt", "sub/c.png"]


@pytest.mark.parametrize("lines, list_root, expected", [
    # Paths start at the list's folder; a label after a path is ignored.
    ("x/a.png 3\n\n# a comment\nb.png\n", None, ["{list}/x/a.png",
                                                  "{list}/b.png"]),
    ("a.png\n", "{root}", ["{root}/a.png"]),
    ("/abs/a.png 0\n", None, ["/abs/a.png"]),
])
def test_a_list_file_gives_its_paths(tmp_path, lines, list_root, expected):
  listing = tmp_path / "lists" / "images.txt"
  listing.parent.mkdir()
  listing.write_text(lines)
  fill = {"list": str(listing.parent), "root": str(tmp_path / "root")}
  got = prediction.list_inputs(str(listing),
                               list_root.format(**fill) if list_root else None)
  assert got == [path.format(**fill) for path in expected]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "is neither a folder nor a list file"),
    (lambda tmp: tmp, "holds no files"),
])
def test_inputs_without_files_are_refused(tmp_path, make, message):
  with pytest.raises(ValueError, match=message):
    prediction.list_inputs(str(make(tmp_path)))
