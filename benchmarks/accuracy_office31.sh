#!/usr/bin/env bash
# Office-31, 6 tasks x 3 seeds, SRDC and source-only, on cached features of
# the frozen ImageNet MobileNetV2 (the only ImageNet weights to be had
# offline here; see ../shared/weights/README.md).
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     bash benchmarks/accuracy_office31.sh [runs/office31] [epochs]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/office31}
epochs=${2:-50}
python=${PYTHON:-.venv/bin/python}
: "${SRDC_DATA_ROOT:?set SRDC_DATA_ROOT to the folder that holds office31/}"
: "${MOBILENET_WEIGHTS:?set MOBILENET_WEIGHTS to mobilenet_v2_imagenet_notop.weights.h5}"
for seed in 0 1 2; do
  for task in a2w d2w w2d a2d d2a w2a; do
    dir="$out/$task/seed$seed"
    [ -f "$dir/summary.json" ] && continue
    "$python" -m srdc_tf.train --flagfile="flags/office31/$task.cfg" \
      --backbone=mobilenet_v2 --weights="$MOBILENET_WEIGHTS" \
      --freeze_backbone --feature_cache_dir="$out/feature_cache" \
      --epochs="$epochs" --seed="$seed" --with_baseline --verbose=0 \
      --model_dir="$dir" --export_dir= 2>&1 | grep -A3 "=== Target"
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
