#!/usr/bin/env bash
# USPS->MNIST and MNIST->USPS, LeNet from scratch, 3 seeds, SRDC and
# source-only (the flagfiles' settings; flags after the folder are added to
# every run).
#   TFDS_DATA_DIR=<folder holding mnist/ and usps/> [SEEDS="0 1 2"] \
#     [TASKS="usps2mnist mnist2usps"] bash benchmarks/accuracy_digits.sh \
#     [runs/digits [FLAG...]]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/digits}
shift || true
need_digits
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-usps2mnist mnist2usps}; do
    digits_run "$task" "$seed" "$out/$task/seed$seed" --with_baseline "$@"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
