#!/usr/bin/env bash
# USPS->MNIST and MNIST->USPS, LeNet from scratch, 3 seeds, SRDC and
# source-only (the flagfiles' settings).
#   TFDS_DATA_DIR=<folder holding mnist/ and usps/> [SEEDS="0 1 2"] \
#     [TASKS="usps2mnist mnist2usps"] bash benchmarks/accuracy_digits.sh [runs/digits]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/digits}
python=${PYTHON:-.venv/bin/python}
: "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder that holds mnist/ and usps/}"
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-usps2mnist mnist2usps}; do
    dir="$out/$task/seed$seed"
    [ -f "$dir/summary.json" ] && continue
    "$python" -m srdc_tf.train --flagfile="flags/digits/$task.cfg" \
      --tfds_data_dir="$TFDS_DATA_DIR" --seed="$seed" --with_baseline \
      --verbose=0 --model_dir="$dir" --export_dir= 2>&1 | grep -A3 "=== Target"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
