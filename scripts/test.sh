#!/usr/bin/env bash
# Sets up (idempotently) and runs the test suite. Long end-to-end tests run
# in a short form unless SRDC_FULL_TESTS=1. Extra arguments go to pytest.
# The slowest tests are listed at the end, to keep the suite under about
# 15 minutes on 2 busy cores.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python -m pytest -q --durations=15 "$@" tests
