#!/usr/bin/env bash
# Office-31, 6 tasks x 3 seeds, SRDC and source-only, on cached features of
# the frozen ImageNet MobileNetV2 (the only ImageNet weights to be had
# offline here; see ../shared/weights/README.md). Flags after the epochs go
# to every run (accuracy_office31_finetune.sh passes --trainable_layers).
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     [SEEDS="0 1 2"] [TASKS="a2w d2w w2d a2d d2a w2a"] \
#     bash benchmarks/accuracy_office31.sh [runs/office31] [epochs] [flag...]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/office31}
epochs=${2:-50}
shift $(( $# > 2 ? 2 : $# ))
need_office31
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-a2w d2w w2d a2d d2a w2a}; do
    office31_run "$task" "$seed" "$out/$task/seed$seed" "$out/feature_cache" \
      "$epochs" --with_baseline "$@"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
