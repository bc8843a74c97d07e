#!/usr/bin/env bash
# SRDC.md's ablation switches on a digits task, where the backbone (LeNet)
# is trained, unlike the frozen-feature Office-31 ablation: SRDC without
# structural source regularisation, without feature-level clustering,
# without soft source selection. Full SRDC and source-only come from
# accuracy_digits.sh: pass its output folder.
#   TFDS_DATA_DIR=<folder holding mnist/ and usps/> [SEEDS="0 1 2"] \
#     [TASK=usps2mnist] bash benchmarks/ablation_digits.sh [runs/digits]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/digits}
task=${TASK:-usps2mnist}
need_digits
for seed in ${SEEDS:-0 1 2}; do
  for ablation in nosource_regularization nofeature_clustering nosoft_selection; do
    digits_run "$task" "$seed" "$out/ablation/$ablation/$task/seed$seed" \
      --"$ablation"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/ablation_table" \
  --tasks="digits/$task"
