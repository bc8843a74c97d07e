"""Prediction on files as rows: which files, the top-k ranking, CSV rows.

Pure logic, no TensorFlow; `srdc_tf.predictor` runs the model and the
`srdc-predict` binary (`srdc_tf.predict`) wires the two together.
"""

import os

import numpy as np

ERROR_COLUMN = "error"


def list_inputs(spec, list_root=None):
  """The image files to predict, in a fixed order.

  Args:
    spec: a folder (every non-hidden file under it, recursively, sorted:
      a file that is not an image is reported, not dropped), or a list file
      with one path per line (an integer label after the path, as in the
      training image lists, is ignored; blank and `#` lines are skipped).
    list_root: where a list's relative paths start (default: the list's
      folder).

  Returns:
    A list of paths.

  Raises:
    ValueError: `spec` is neither a folder nor a file, or holds no files.
  """
  if os.path.isdir(spec):
    paths = []
    for folder, names, files in os.walk(spec):
      names[:] = sorted(name for name in names if not name.startswith("."))
      paths += [os.path.join(folder, name) for name in sorted(files)
                if not name.startswith(".")]
  elif os.path.isfile(spec):
    root = list_root or os.path.dirname(os.path.abspath(spec))
    paths = []
    with open(spec) as lines:
      for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
          continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
          line = parts[0]
        paths.append(os.path.join(root, os.path.expanduser(line)))
  else:
    raise ValueError(f"--input={spec!r} is neither a folder nor a list file")
  if not paths:
    raise ValueError(f"--input={spec!r} holds no files")
  return paths


def top_k(probabilities, k):
  """The k most probable classes of every row, most probable first.

  Ties go to the lower class id.

  Args:
    probabilities: `[N, K]` array.
    k: how many; more than K gives K.

  Returns:
    `(class_ids, probabilities)`, both `[N, min(k, K)]`.
  """
  probabilities = np.asarray(probabilities)
  if probabilities.ndim != 2:
    raise ValueError(f"probabilities must be [N, K], got shape "
                     f"{probabilities.shape}")
  if k < 1:
    raise ValueError(f"k must be >= 1, got {k}")
  k = min(k, probabilities.shape[1])
  order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
  return order, np.take_along_axis(probabilities, order, axis=1)


def csv_columns(k):
  """The CSV header of `srdc-predict`.

  Args:
    k: the top-k of every row.

  Returns:
    `path, class_name, probability, top1_class, top1_probability, ...,
    error`.
  """
  columns = ["path", "class_name", "probability"]
  for rank in range(1, k + 1):
    columns += [f"top{rank}_class", f"top{rank}_probability"]
  return columns + [ERROR_COLUMN]


def prediction_rows(paths, probabilities, class_names, k):
  """One row per image: its prediction and top-k, as `csv_columns(k)`.

  Args:
    paths: the N image paths.
    probabilities: `[N, K]`.
    class_names: the K class names, in label order.
    k: the top-k; rows of a model of fewer classes leave the rest empty.

  Returns:
    A list of N dicts keyed by `csv_columns(k)`.
  """
  if len(class_names) != np.shape(probabilities)[1]:
    raise ValueError(f"{len(class_names)} class names for probabilities of "
                     f"{np.shape(probabilities)[1]} classes")
  ids, values = top_k(probabilities, k)
  rows = []
  for path, row_ids, row_values in zip(paths, ids, values):
    row = dict.fromkeys(csv_columns(k), "")
    row.update(path=path, class_name=class_names[row_ids[0]],
               probability=_format(row_values[0]))
    for rank, (class_id, value) in enumerate(zip(row_ids, row_values), 1):
      row[f"top{rank}_class"] = class_names[class_id]
      row[f"top{rank}_probability"] = _format(value)
    rows.append(row)
  return rows


def error_row(path, problem, k):
  """The row of a file that could not be predicted: its path and why."""
  row = dict.fromkeys(csv_columns(k), "")
  row.update(path=path, error=problem)
  return row


def _format(probability):
  return f"{float(probability):.6f}"
