#!/usr/bin/env bash
# Office-31, SRDC and source-only with the top of the ImageNet MobileNetV2
# fine-tuned: its last block (--trainable_layers=12, from block_16_expand
# up, BatchNorm included) trains on activations cached below it for
# --cached_views views per image; fc1, fc2 and the centres train as in
# accuracy_office31.sh, whose frozen-feature table this one sits beside and
# whose loop this is. The top trains at 0.01x the learning rate
# (--backbone_lr_multiplier=0.01; the paper's 0.1 before): chosen by the
# rule written before its runs (README, "Office-31, the top of ImageNet
# MobileNetV2 fine-tuned"); flags after the epochs override it.
#   SRDC_DATA_ROOT=<folder holding office31/> MOBILENET_WEIGHTS=<file> \
#     [SEEDS="0 1 2"] [TASKS="a2w d2w w2d a2d d2a w2a"] \
#     bash benchmarks/accuracy_office31_finetune.sh [runs/office31_finetune] \
#     [epochs] [flag...]
out=${1:-runs/office31_finetune}
epochs=${2:-50}
shift $(( $# > 2 ? 2 : $# ))
exec bash "$(dirname "$0")/accuracy_office31.sh" "$out" "$epochs" \
  --trainable_layers=12 --backbone_lr_multiplier=0.01 "$@"
