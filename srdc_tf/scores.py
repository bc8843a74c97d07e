"""Label-free scores of a model's target predictions: pure NumPy, no I/O.

The target has no labels, so a run cannot measure its target accuracy;
these scores are what it can measure instead, on the classifier's outputs
over the whole un-augmented target:

- `mean_entropy`: how confident the predictions are (lower = more
  confident; entropy minimisation drives it down, right or wrong).
- `class_balance`: how evenly the predictions spread over the classes (1 =
  every class predicted equally often on average, 0 = one class only).
- `soft_neighbourhood_density` (SND, Saito et al., ICCV 2021): how densely
  the target's softmax outputs are grouped with their neighbours (higher
  = better).
- `agreement`: the fraction of equal labels of two labelings (k-means
  pseudo-labels against the classifier, SRDC against the source-only
  baseline).
- `largest_class_share`: the fraction of samples given the most predicted
  class (what the collapse guard compares with the source's frequencies).

`target_scores` computes all of them from logits, under the names the
runs log (`SCORE_PREFIX` + name).
"""

import numpy as np

SCORE_PREFIX = "score_"
ENTROPY = "entropy"
BALANCE = "balance"
SND = "snd"
LARGEST_CLASS_SHARE = "largest_class_share"
KMEANS_AGREEMENT = "kmeans_agreement"
BASELINE_AGREEMENT = "baseline_agreement"

SND_TEMPERATURE = 0.05  # The paper's and its released code's temperature.
# SND costs N^2 exponentials: on 60000 MNIST images that is 3.6e9 per
# epoch. It is computed on a fixed random subset of at most this many
# samples (the same subset at every epoch, so epochs stay comparable), in
# row chunks of `SND_CHUNK_ROWS` (20 MB each at 10000 samples): 1.3 to
# 4.4 s per epoch at 10000 samples, measured on 2 CPU cores at load 6-8.
SND_MAX_SAMPLES = 10000
SND_SEED = 0
SND_CHUNK_ROWS = 512
_ROW_SUM_TOLERANCE = 1e-3


def _check_finite(values, name):
  if not np.all(np.isfinite(values)):
    raise ValueError(f"{name} must be finite, got "
                     f"{int(np.sum(~np.isfinite(values)))} NaN or infinite "
                     "values")


def _as_probabilities(probs, name="probs"):
  probs = np.asarray(probs, dtype=np.float64)
  if probs.ndim != 2:
    raise ValueError(f"{name} must be 2-D [samples, classes], got shape "
                     f"{probs.shape}")
  if probs.shape[0] == 0 or probs.shape[1] == 0:
    raise ValueError(f"{name} must have samples and classes, got shape "
                     f"{probs.shape}")
  _check_finite(probs, name)
  if probs.min() < 0:
    raise ValueError(f"{name} must be >= 0, got a minimum of "
                     f"{float(probs.min())!r}")
  sums = probs.sum(axis=1)
  worst = int(np.argmax(np.abs(sums - 1.0)))
  if abs(sums[worst] - 1.0) > _ROW_SUM_TOLERANCE:
    raise ValueError(f"every row of {name} must sum to 1, got a row summing "
                     f"to {float(sums[worst])!r} (row {worst}); softmax the "
                     "logits first")
  return probs


def _entropy_rows(probs):
  """Entropy (nats) of each row, with 0 log 0 = 0."""
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = np.where(probs > 0, probs * np.log(probs), 0.0)
  return -terms.sum(axis=1)


def _as_labels(values, name):
  values = np.asarray(values)
  if values.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
  if values.size == 0:
    raise ValueError(f"{name} is empty")
  if not np.issubdtype(values.dtype, np.integer):
    raise ValueError(f"{name} must be integers, got dtype {values.dtype}")
  return values


def softmax(logits):
  """Row-wise softmax of `[N, K]` logits, in float64.

  Args:
    logits: `[N, K]` finite logits.

  Returns:
    `[N, K]` float64 probabilities.

  Raises:
    ValueError: `logits` is not 2-D or not finite.
  """
  logits = np.asarray(logits, dtype=np.float64)
  if logits.ndim != 2:
    raise ValueError(f"logits must be 2-D [samples, classes], got shape "
                     f"{logits.shape}")
  _check_finite(logits, "logits")
  shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
  return shifted / shifted.sum(axis=1, keepdims=True)


def mean_entropy(probs):
  """Mean over samples of the entropy of each prediction.

  Args:
    probs: `[N, K]` predicted class probabilities, rows summing to 1.

  Returns:
    A float in [0, log K] nats: 0 when every prediction is one-hot, log K
    when every prediction is uniform.

  Raises:
    ValueError: `probs` is not `[N, K]` probabilities.
  """
  probs = _as_probabilities(probs)
  return float(np.mean(_entropy_rows(probs)))


def class_balance(probs):
  """Entropy of the mean prediction over log K: how evenly the target is
  spread over the classes.

  Args:
    probs: `[N, K]` predicted class probabilities, K >= 2.

  Returns:
    A float in [0, 1]: 1 when the classes are predicted equally on
    average, 0 when all the mass goes to one class.

  Raises:
    ValueError: `probs` is not `[N, K]` probabilities, or K < 2.
  """
  probs = _as_probabilities(probs)
  num_classes = probs.shape[1]
  if num_classes < 2:
    raise ValueError(f"class_balance needs K >= 2 classes, got {num_classes}")
  marginal = probs.mean(axis=0, keepdims=True)
  return float(_entropy_rows(marginal)[0] / np.log(num_classes))


def snd_subset(num_samples, max_samples=SND_MAX_SAMPLES, seed=SND_SEED):
  """The indices SND is computed on: all of them up to `max_samples`, else a
  fixed random subset (sorted), the same for the same arguments.

  Args:
    num_samples: N.
    max_samples: the largest subset, or None for all samples.
    seed: seed of the subset.

  Returns:
    `[min(N, max_samples)]` int64 indices, or None for all samples.
  """
  if max_samples is None or num_samples <= max_samples:
    return None
  rng = np.random.default_rng(seed)
  return np.sort(rng.choice(num_samples, size=int(max_samples),
                            replace=False))


def soft_neighbourhood_density(features_or_probs, temperature=SND_TEMPERATURE,
                               max_samples=SND_MAX_SAMPLES, seed=SND_SEED,
                               chunk_rows=SND_CHUNK_ROWS):
  """Soft neighbourhood density (SND) of Saito et al., ICCV 2021.

  Each row is L2-normalised; the cosine similarity of every sample to
  every other one (the diagonal removed, as pytorch-adapt's SNDValidator
  does) is divided by `temperature` and softmax-normalised over the row;
  SND is the mean entropy of those rows.
  High SND: each sample has many close neighbours (dense clusters). The
  paper computes it on the classifier's softmax outputs, as the runs do.

  The similarity matrix is never built whole: rows go in chunks of
  `chunk_rows` (`chunk_rows x N` floats at a time), and above
  `max_samples` samples SND is computed on the fixed subset `snd_subset`
  (seeded; the same at every call with the same N).

  Args:
    features_or_probs: `[N, D]` softmax outputs (or features), N >= 2, no
      row all zeros.
    temperature: softmax temperature, > 0.
    max_samples: subsample above this many samples (None: never).
    seed: seed of the subsample.
    chunk_rows: rows of the similarity matrix computed at once, > 0.

  Returns:
    A float in [0, log(M - 1)] nats, M the samples used: log(M - 1) when
    all rows point the same way.

  Raises:
    ValueError: bad shape, values, temperature or chunk size.
  """
  values = np.asarray(features_or_probs, dtype=np.float64)
  if values.ndim != 2:
    raise ValueError(f"features_or_probs must be 2-D [samples, dims], got "
                     f"shape {values.shape}")
  if values.shape[0] < 2:
    raise ValueError("soft_neighbourhood_density needs at least 2 samples, "
                     f"got {values.shape[0]}")
  if not np.all(np.isfinite(values)):
    raise ValueError("features_or_probs must be finite, got "
                     f"{int(np.sum(~np.isfinite(values)))} NaN or infinite "
                     "values")
  if not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature!r}")
  if int(chunk_rows) <= 0:
    raise ValueError(f"chunk_rows must be > 0, got {chunk_rows!r}")
  if max_samples is not None and int(max_samples) < 2:
    raise ValueError(f"max_samples must be >= 2 or None, got {max_samples!r}")
  subset = snd_subset(len(values), max_samples, seed)
  if subset is not None:
    values = values[subset]
  norms = np.linalg.norm(values, axis=1, keepdims=True)
  if np.any(norms == 0):
    raise ValueError("features_or_probs has a row of zeros (row "
                     f"{int(np.argmax(norms[:, 0] == 0))}), which has no "
                     "direction")
  unit = (values / norms).astype(np.float32)
  unit_t = np.ascontiguousarray(unit.T)
  inverse_temperature = np.float32(1.0 / temperature)
  num = len(unit)
  total = 0.0
  for start in range(0, num, int(chunk_rows)):
    stop = min(start + int(chunk_rows), num)
    rows = np.arange(stop - start)
    logits = unit[start:stop] @ unit_t
    logits *= inverse_temperature
    logits[rows, start + rows] = -np.inf  # The sample itself is not counted.
    top = logits.max(axis=1)
    weights = np.subtract(logits, top[:, None])
    np.exp(weights, out=weights)
    sums = weights.sum(axis=1)
    logits[rows, start + rows] = 0.0  # Its weight is 0; avoid 0 * -inf.
    # H = log(sum e^z) - sum p z, with p = e^(z - top) / sums.
    expected = np.einsum("ij,ij->i", weights, logits) / sums
    total += float(np.sum(top.astype(np.float64) + np.log(sums)
                          - expected))
  return total / num


def agreement(a, b):
  """Fraction of positions where two labelings are equal.

  Args:
    a: `[N]` integer labels.
    b: `[N]` integer labels.

  Returns:
    A float in [0, 1].

  Raises:
    ValueError: not 1-D integers, empty, or of different lengths.
  """
  a, b = _as_labels(a, "a"), _as_labels(b, "b")
  if a.shape != b.shape:
    raise ValueError(f"a has {a.shape[0]} labels but b has {b.shape[0]}")
  return float(np.mean(a == b))


def class_shares(labels, num_classes):
  """Fraction of the samples in each class.

  Args:
    labels: `[N]` integer labels in [0, num_classes).
    num_classes: K, > 0.

  Returns:
    `[K]` float64 shares, summing to 1.

  Raises:
    ValueError: bad `num_classes`, or labels not 1-D integers in range.
  """
  if int(num_classes) <= 0:
    raise ValueError(f"num_classes must be > 0, got {num_classes!r}")
  labels = _as_labels(labels, "labels")
  if labels.min() < 0 or labels.max() >= num_classes:
    bad = sorted(set(labels[(labels < 0) | (labels >= num_classes)].tolist()))
    raise ValueError(f"labels must be in [0, {num_classes}), got {bad[:10]}")
  counts = np.bincount(labels, minlength=int(num_classes))
  return counts / counts.sum()


def largest_class_share(predictions, num_classes):
  """Fraction of the samples given the most predicted class.

  Args:
    predictions: `[N]` predicted classes in [0, num_classes).
    num_classes: K, > 0.

  Returns:
    A float in [1/K, 1]: 1 when every sample gets the same class.

  Raises:
    ValueError: see `class_shares`.
  """
  return float(class_shares(predictions, num_classes).max())


def target_scores(logits, pseudo_labels=None, baseline_predictions=None,
                  snd_max_samples=SND_MAX_SAMPLES):
  """Every label-free score of one model's target outputs.

  Args:
    logits: `[N, K]` logits of the whole target, in index order.
    pseudo_labels: `[N]` k-means pseudo-labels of the same samples, or None.
    baseline_predictions: `[N]` predicted classes of the source-only
      baseline on the same samples, or None.
    snd_max_samples: see `soft_neighbourhood_density`.

  Returns:
    A dict from score name (`ENTROPY`, `BALANCE`, `SND`,
    `LARGEST_CLASS_SHARE`, and `KMEANS_AGREEMENT` / `BASELINE_AGREEMENT`
    when their labels are given) to a float.

  Raises:
    ValueError: bad logits, or labels of another length.
  """
  probs = softmax(logits)
  predictions = np.argmax(probs, axis=1)
  scores = {
      ENTROPY: mean_entropy(probs),
      BALANCE: class_balance(probs),
      SND: soft_neighbourhood_density(probs, max_samples=snd_max_samples),
      LARGEST_CLASS_SHARE: largest_class_share(predictions, probs.shape[1]),
  }
  if pseudo_labels is not None:
    scores[KMEANS_AGREEMENT] = agreement(pseudo_labels, predictions)
  if baseline_predictions is not None:
    scores[BASELINE_AGREEMENT] = agreement(baseline_predictions, predictions)
  return scores
