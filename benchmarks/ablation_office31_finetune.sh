#!/usr/bin/env bash
# SRDC.md's ablation on Office-31's four hard tasks with the top of
# MobileNetV2 fine-tuned (as accuracy_office31_finetune.sh, whose runs give
# the full-SRDC and source-only rows: pass its output folder to share them
# and the activation cache): ablation_office31.sh's loop with
# --trainable_layers=12 and that script's --backbone_lr_multiplier=0.01;
# flags after the epochs override them.
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     [SEEDS="0 1 2"] [ABLATIONS="nosource_regularization ..."] [TASKS=...] \
#     bash benchmarks/ablation_office31_finetune.sh [runs/office31_finetune] \
#     [epochs] [flag...]
exec bash "$(dirname "$0")/ablation_office31.sh" \
  "${1:-runs/office31_finetune}" "${2:-50}" --trainable_layers=12 \
  --backbone_lr_multiplier=0.01 "${@:3}"
