#!/usr/bin/env bash
# SRDC.md's ablation on Office-31's four hard tasks (A->W, A->D, D->A, W->A):
# full SRDC against SRDC without structural source regularisation, without
# feature-level clustering, and without soft source selection, 3 seeds, on
# cached features of the frozen ImageNet MobileNetV2 like
# accuracy_office31.sh (whose runs give the full-SRDC and source-only rows:
# pass its output folder to share them and the feature cache).
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     [SEEDS="0 1 2"] [ABLATIONS="nosource_regularization ..."] [TASKS=...] \
#     bash benchmarks/ablation_office31.sh [runs/office31] [epochs] [flag...]
# Flags after the epochs go to every run (ablation_office31_finetune.sh).
source "$(dirname "$0")/runs.sh"
out=${1:-runs/office31}
epochs=${2:-50}
shift $(( $# > 2 ? 2 : $# ))
need_office31
tasks=${TASKS:-a2w a2d d2a w2a}
for seed in ${SEEDS:-0 1 2}; do
  for ablation in ${ABLATIONS:-nosource_regularization nofeature_clustering nosoft_selection}; do
    for task in $tasks; do
      office31_run "$task" "$seed" "$out/ablation/$ablation/$task/seed$seed" \
        "$out/feature_cache" "$epochs" --"$ablation" "$@"
    done
  done
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/ablation_table" \
  --tasks="$(printf 'office31/%s,' $tasks | sed 's/,$//')"
