#!/usr/bin/env bash
# Office-31, 6 tasks x 3 seeds, SRDC and source-only, on cached features of
# the frozen ImageNet MobileNetV2 (the only ImageNet weights to be had
# offline here; see ../shared/weights/README.md).
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     bash benchmarks/accuracy_office31.sh [runs/office31] [epochs]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/office31}
epochs=${2:-50}
need_office31
for seed in 0 1 2; do
  for task in a2w d2w w2d a2d d2a w2a; do
    office31_run "$task" "$seed" "$out/$task/seed$seed" "$out/feature_cache" \
      "$epochs" --with_baseline
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
