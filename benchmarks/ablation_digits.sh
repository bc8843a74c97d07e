#!/usr/bin/env bash
# SRDC.md's ablation switches on a digits task, where the backbone (LeNet)
# is trained, unlike the frozen-feature Office-31 ablation: SRDC without
# structural source regularisation, without feature-level clustering,
# without soft source selection. Full SRDC and source-only come from
# accuracy_digits.sh: pass its output folder.
#   TFDS_DATA_DIR=<folder holding mnist/ and usps/> [SEEDS="0 1 2"] \
#     [TASK=usps2mnist] bash benchmarks/ablation_digits.sh [runs/digits]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/digits}
task=${TASK:-usps2mnist}
python=${PYTHON:-.venv/bin/python}
: "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder that holds mnist/ and usps/}"
for seed in ${SEEDS:-0 1 2}; do
  for ablation in nosource_regularization nofeature_clustering nosoft_selection; do
    dir="$out/ablation/$ablation/$task/seed$seed"
    [ -f "$dir/summary.json" ] && continue
    "$python" -m srdc_tf.train --flagfile="flags/digits/$task.cfg" \
      --tfds_data_dir="$TFDS_DATA_DIR" --seed="$seed" --"$ablation" \
      --verbose=0 --model_dir="$dir" --export_dir= 2>&1 | grep -A3 "=== Target"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/ablation_table" \
  --tasks="digits/$task"
