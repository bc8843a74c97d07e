#!/usr/bin/env bash
# MNIST -> textured MNIST (the offline hard shift in the spirit of MNIST ->
# MNIST-M), LeNet from scratch, 3 seeds, SRDC and source-only (the
# flagfile's settings; flags after the output folder are added to every
# run, e.g. --augment_fill=zeros). The target is generated in code from
# MNIST. TASK=mnist2mnistm runs the real MNIST -> MNIST-M instead
# (flags/digits/mnist2mnistm.cfg: MNIST-M as released, under
# $SRDC_DATA_ROOT/mnist_m).
#   TFDS_DATA_DIR=<folder holding mnist/> [SEEDS="0 1 2"] [TASK=mnist2textured] \
#     [SRDC_DATA_ROOT=<folder holding mnist_m/>] \
#     bash benchmarks/accuracy_hard_shift.sh [runs/hard_shift [FLAG...]]
source "$(dirname "$0")/runs.sh"
out=${1:-runs/hard_shift}
shift $(( $# > 0 ? 1 : 0 ))
: "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to the folder that holds mnist/}"
task=${TASK:-mnist2textured}
if [ "$task" = mnist2mnistm ]; then
  : "${SRDC_DATA_ROOT:?set SRDC_DATA_ROOT to the folder that holds mnist_m/}"
fi
for seed in ${SEEDS:-0 1 2}; do
  digits_run "$task" "$seed" "$out/$task/seed$seed" --with_baseline "$@"
done
"$python" -m srdc_tf.report --run_dirs="$out" --output="$out/table"
