#!/usr/bin/env bash
# SRDC.md's ablation on Office-31's four hard tasks with the top of
# MobileNetV2 fine-tuned (as accuracy_office31_finetune.sh, whose runs give
# the full-SRDC and source-only rows: pass its output folder to share them
# and the activation cache): without structural source regularisation,
# without feature-level clustering, without soft source selection.
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     [SEEDS="0 1 2"] [ABLATIONS="nosource_regularization ..."] \
#     bash benchmarks/ablation_office31_finetune.sh [runs/office31_finetune] \
#     [epochs]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/office31_finetune}
epochs=${2:-50}
need_office31
for seed in ${SEEDS:-0 1 2}; do
  for ablation in ${ABLATIONS:-nosource_regularization nofeature_clustering nosoft_selection}; do
    for task in ${TASKS:-a2w a2d d2a w2a}; do
      office31_run "$task" "$seed" "$out/ablation/$ablation/$task/seed$seed" \
        "$out/feature_cache" "$epochs" --trainable_layers=12 --"$ablation"
    done
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/ablation_table" \
  --tasks=office31/a2w,office31/a2d,office31/d2a,office31/w2a
