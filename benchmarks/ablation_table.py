"""Prints the released-code ablation as one Markdown table.

Reads `<root>/<family>/<variant>/<task>/seed<seed>/summary.json`, the
layout `benchmarks/ablation_released.sh` writes, and prints one row per
variant: each task's SRDC target accuracy (%), each family's average over
the tasks it has, and its difference from the `defaults` row. A variant
missing a task shows "-" there and gets no family average.

  python benchmarks/ablation_table.py runs/ablation_released [seed]
"""

import json
import os
import sys

FAMILIES = {
    "office31": ("a2w", "d2w", "w2d", "a2d", "d2a", "w2a"),
    "digits": ("mnist2usps", "usps2mnist"),
}


def accuracy(root, family, variant, task, seed):
  """SRDC's target accuracy (%) of one run, or None if it has not
  finished."""
  path = os.path.join(root, family, variant, task, f"seed{seed}",
                      "summary.json")
  try:
    with open(path) as f:
      return 100.0 * json.load(f)["srdc"]["target_accuracy"]
  except (OSError, ValueError, KeyError):
    return None


def table(root, seed=0):
  """The Markdown lines of the table."""
  variants = sorted({name for family in FAMILIES
                     if os.path.isdir(os.path.join(root, family))
                     for name in os.listdir(os.path.join(root, family))
                     if os.path.isdir(os.path.join(root, family, name))})
  variants.sort(key=lambda name: (name != "defaults", name != "released",
                                  name))
  values = {v: {f: [accuracy(root, f, v, t, seed) for t in tasks]
                for f, tasks in FAMILIES.items()} for v in variants}

  def mean(cells):
    return None if None in cells else sum(cells) / len(cells)

  base = {f: mean(values.get("defaults", {}).get(f, [None]))
          for f in FAMILIES}
  header = ["variant"]
  for family, tasks in FAMILIES.items():
    header += list(tasks) + [f"{family} avg", "vs defaults"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for variant in variants:
    row = [variant]
    for family in FAMILIES:
      cells = values[variant][family]
      row += ["-" if c is None else f"{c:.1f}" for c in cells]
      average = mean(cells)
      row.append("-" if average is None else f"{average:.2f}")
      delta = (None if average is None or base[family] is None
               else average - base[family])
      row.append("-" if delta is None else f"{delta:+.2f}")
    lines.append("| " + " | ".join(row) + " |")
  return lines


if __name__ == "__main__":
  if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
  print("\n".join(table(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3
                        else 0)))
