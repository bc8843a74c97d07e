#!/usr/bin/env bash
# MNIST -> textured MNIST (the offline hard shift in the spirit of MNIST ->
# MNIST-M), LeNet from scratch, 3 seeds, SRDC and source-only (the
# flagfile's settings; flags after the output folder are added to every
# run, e.g. --augment_fill=zeros). The target is generated in code from
# MNIST.
#   TFDS_DATA_DIR=<folder holding mnist/> [SEEDS="0 1 2"] \
#     bash benchmarks/accuracy_hard_shift.sh [runs/hard_shift [FLAG...]]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/hard_shift}
shift $(( $# > 0 ? 1 : 0 ))
: "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder that holds mnist/}"
for seed in ${SEEDS:-0 1 2}; do
  digits_run mnist2textured "$seed" "$out/mnist2textured/seed$seed" \
    --with_baseline "$@"
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
