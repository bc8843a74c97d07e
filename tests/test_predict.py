"""srdc-predict and the Predictor: an export and a run directory predict
the same, bad files are listed (not fatal unless asked), the CSV is whole."""

import csv
import os

import numpy as np
from PIL import Image
import pytest

from srdc_tf import predictor
import serving_testlib

BAD_FILES = {"empty.jpg": (b"", "empty file"),
             "notes.txt": (b"not an image", predictor.NOT_AN_IMAGE),
             "truncated.png": (None, "could not be decoded")}


def _image_folder(tmp_path, count=5):
  """`count` PNGs of other sizes (one grey, in a subfolder) and the bad
  files; returns the folder and the good images' paths and pixels."""
  folder = tmp_path / "images"
  (folder / "sub").mkdir(parents=True)
  good = {}
  for i, pixels in enumerate(serving_testlib.pixel_images(count,
                                                          (40, 36, 3))):
    path = folder / ("sub" if i == 0 else "") / f"{i}.png"
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    good[str(path)] = pixels
  first_png = (folder / "1.png").read_bytes()
  for name, (contents, _) in BAD_FILES.items():
    (folder / name).write_bytes(first_png[:80] if contents is None
                                else contents)
  return folder, good


def _models():
  settings, _, result = serving_testlib.trained_run()
  return {"export": result["export"], "run": settings.model_dir,
          "export_base": settings.export_dir}


@pytest.fixture(scope="module")
def loaded():
  return {kind: predictor.load(path) for kind, path in _models().items()}


@pytest.mark.parametrize("kind", ["export", "run", "export_base"])
def test_files_stream_in_batches_and_bad_files_are_listed(kind, loaded,
                                                          tmp_path):
  model = loaded[kind]
  folder, good = _image_folder(tmp_path)
  paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
  batches = list(model.predict_files(paths, batch_size=3))
  assert len(batches) >= 3
  predicted = [path for batch in batches for path in batch.paths]
  bad = {os.path.basename(path): problem
         for batch in batches for _, path, problem in batch.bad}
  assert sorted(predicted) == sorted(good)
  assert sorted(bad) == sorted(BAD_FILES)
  for name, (_, problem) in BAD_FILES.items():
    assert bad[name].startswith(problem), bad
  probabilities = np.concatenate([batch.probabilities for batch in batches])
  assert probabilities.shape == (len(good), len(model.class_names))
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_export_and_run_directory_predict_the_same(loaded, tmp_path):
  _, good = _image_folder(tmp_path)
  pixels = np.stack(list(good.values()))
  from_export = loaded["export"].predict(pixels)
  from_run = loaded["run"].predict(pixels)
  from_files = loaded["run"].predict(list(good))
  assert loaded["export"].class_names == loaded["run"].class_names
  np.testing.assert_allclose(from_export["probabilities"],
                             from_run["probabilities"], atol=1e-5)
  np.testing.assert_allclose(from_files["probabilities"],
                             from_run["probabilities"], atol=1e-5)
  assert from_run["class_name"] == [loaded["run"].class_names[i]
                                    for i in from_run["class_id"]]


def test_load_names_what_a_model_folder_must_hold(tmp_path):
  with pytest.raises(FileNotFoundError, match="is not a model: expected an "
                     "export version folder"):
    predictor.load(str(tmp_path))


@pytest.mark.parametrize("top_k, columns", [(2, 2), (50, 6)])
def test_the_csv_has_one_row_per_file_in_input_order(loaded, tmp_path,
                                                     top_k, columns):
  folder, good = _image_folder(tmp_path)
  paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
  output = tmp_path / "out" / "predictions.csv"
  predicted, bad = predictor.predict_to_csv(loaded["export"], paths,
                                          str(output), top_k, batch_size=4)
  assert (predicted, len(bad)) == (len(good), len(BAD_FILES))
  with open(output, newline="") as f:
    rows = list(csv.DictReader(f))
  assert [row["path"] for row in rows] == paths
  assert f"top{columns}_class" in rows[0] and (
      f"top{columns + 1}_class" not in rows[0])
  for row in rows:
    if os.path.basename(row["path"]) in BAD_FILES:
      assert row["error"] and not row["class_name"]
    else:
      assert row["class_name"] == row["top1_class"] and not row["error"]
      assert 0.0 < float(row["probability"]) <= 1.0


def test_fail_on_bad_images_stops_and_leaves_no_csv(loaded, tmp_path):
  folder, _ = _image_folder(tmp_path)
  paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
  output = tmp_path / "predictions.csv"
  with pytest.raises(ValueError, match="empty.jpg: empty file"):
    predictor.predict_to_csv(loaded["run"], paths, str(output), 3, 4,
                           fail_on_bad=True)
  assert not output.exists()
  assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


@pytest.mark.e2e
def test_the_binary_writes_the_csv_and_lists_bad_files(tmp_path):
  folder, good = _image_folder(tmp_path)
  output = tmp_path / "predictions.csv"
  result = serving_testlib.run_python(
      ["-m", "srdc_tf.predict", f"--model={_models()['export']}",
       f"--input={folder}", f"--output={output}", "--top_k=3"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"Wrote {len(good)} prediction(s)" in result.stdout
  assert f"{len(BAD_FILES)} file(s) could not be used" in result.stdout
  assert "predicting [" in result.stderr
  with open(output, newline="") as f:
    assert len(list(csv.DictReader(f))) == len(good) + len(BAD_FILES)
  failed = serving_testlib.run_python(
      ["-m", "srdc_tf.predict", f"--model={_models()['run']}",
       f"--input={folder}", f"--output={tmp_path / 'other.csv'}",
       "--fail_on_bad_images"])
  assert failed.returncode == 1
  assert failed.stderr.splitlines()[-2].startswith("error: ")
  assert "(--fail_on_bad_images)" in failed.stderr
