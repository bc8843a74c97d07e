"""One parser for every source/target spec."""

from srdc_tf.data import synthetic

SYNTHETIC_PREFIX = "synthetic:"


def load_domain(spec, synthetic_examples_per_class=300, seed=0):
  """Loads the domain a spec names.

  Spec kinds:
    `synthetic:source`, `synthetic:target`: the built-in shapes domains.

  Args:
    spec: the spec string.
    synthetic_examples_per_class: size of a synthetic domain per class.
    seed: seed of generated data.

  Returns:
    A `Domain`.
  """
  if spec.startswith(SYNTHETIC_PREFIX):
    style = spec[len(SYNTHETIC_PREFIX):]
    # Distinct seeds per style, so the two domains never share draws.
    offset = {"source": 0, "target": 1}.get(style, 0)
    return synthetic.make_domain(style, synthetic_examples_per_class,
                                 seed * 2 + offset)
  raise ValueError(f"unrecognised data spec {spec!r}")
