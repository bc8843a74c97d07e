# Sourced by the accuracy and ablation scripts: the one training command of
# each benchmark family, so that tables and ablations train alike. A run
# whose folder already holds summary.json has finished and is skipped, so
# an interrupted script picks up where it stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${PYTHON:-.venv/bin/python}

need_office31() {
  : "${SRDC_DATA_ROOT:?set SRDC_DATA_ROOT to the folder that holds office31/}"
  : "${MOBILENET_WEIGHTS:?set MOBILENET_WEIGHTS to mobilenet_v2_imagenet_notop.weights.h5}"
}

need_digits() {
  : "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder that holds mnist/ and usps/}"
}

# office31_run TASK SEED MODEL_DIR CACHE_DIR EPOCHS [FLAG...]: one run of
# flags/office31/TASK.cfg on cached features of the frozen ImageNet
# MobileNetV2 (the only ImageNet weights to be had offline here).
office31_run() {
  local task=$1 seed=$2 dir=$3 cache=$4 epochs=$5
  shift 5
  [ -f "$dir/summary.json" ] && return 0
  "$python" -m srdc_tf.train --flagfile="flags/office31/$task.cfg" \
    --backbone=mobilenet_v2 --weights="$MOBILENET_WEIGHTS" \
    --freeze_backbone --feature_cache_dir="$cache" --epochs="$epochs" \
    --seed="$seed" --verbose=0 --model_dir="$dir" --export_dir= "$@" 2>&1 \
    | grep -E -A3 "=== Target|^error"
}

# digits_run TASK SEED MODEL_DIR [FLAG...]: one run of flags/digits/TASK.cfg.
digits_run() {
  local task=$1 seed=$2 dir=$3
  shift 3
  [ -f "$dir/summary.json" ] && return 0
  "$python" -m srdc_tf.train --flagfile="flags/digits/$task.cfg" \
    --tfds_data_dir="$TFDS_DATA_DIR" --seed="$seed" --verbose=0 \
    --model_dir="$dir" --export_dir= "$@" 2>&1 | grep -E -A3 "=== Target|^error"
}
