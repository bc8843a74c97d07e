#!/usr/bin/env bash
# Sets up (idempotently) and runs SRDC on the built-in synthetic default,
# beside a source-only baseline trained the same way. Extra arguments are
# passed to the trainer (e.g. --epochs=5).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
srdc-train --flagfile=flags/default.cfg \
  --model_dir=runs/default --export_dir=saved_models/default "$@"
