"""Soft cluster assignments at a feature layer (SRDC eq. 5)."""

import tensorflow as tf

from srdc_tf.clustering import distances

FEATURE_ASSIGNMENTS = ("softmax", "normalized_kernel")


def feature_assignment_logits(features, centres, alpha=1.0,
                              assignment="softmax"):
  """Student-t kernel between features and centres, as softmax logits.

  With `assignment="softmax"` (SRDC.md, the released code's
  `embed_softmax`) `ptilde` is a softmax over k of the Student-t kernel
  `(1 + ||z_i - mu_k||^2 / alpha)^(-(alpha + 1) / 2)`, so the kernel value
  itself is the logit. Kernel values lie in (0, 1], so that softmax is
  never sharper than e : 1 between two clusters, and uniform to a few
  decimals once squared distances reach the tens.

  With `assignment="normalized_kernel"` (beyond the released code; the
  Student-t assignment of DEC, Xie et al. 2016) `ptilde` is the kernel
  divided by its sum over k, whose logit is the log kernel
  `-(alpha + 1) / 2 * log(1 + ||z_i - mu_k||^2 / alpha)`: it keeps the
  kernel's ratios between clusters at any feature scale.

  Either way `softmax(feature_assignment_logits(z, mu))` is `ptilde`, and
  `log_softmax` of it is the stable `log ptilde`.

  Args:
    features: `[N, D]` float tensor `z`.
    centres: `[K, D]` float tensor `mu`.
    alpha: degrees of freedom of the Student-t kernel, > 0.
    assignment: one of `FEATURE_ASSIGNMENTS`.

  Returns:
    `[N, K]` float32 tensor: kernel values in (0, 1] ("softmax") or their
    logarithms ("normalized_kernel").
  """
  if alpha <= 0:
    raise ValueError(f"alpha must be > 0, got {alpha!r}")
  if assignment not in FEATURE_ASSIGNMENTS:
    raise ValueError(f"assignment must be one of {FEATURE_ASSIGNMENTS}, got "
                     f"{assignment!r}")
  squared = distances.squared_distances(features, centres)
  if assignment == "normalized_kernel":
    return -(alpha + 1.0) / 2.0 * tf.math.log1p(squared / alpha)
  return tf.pow(1.0 + squared / alpha, -(alpha + 1.0) / 2.0)
