#!/usr/bin/env bash
# Sets up (idempotently) and runs the test suite. Long end-to-end tests run
# in a short form unless SRDC_FULL_TESTS=1. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
python -m pytest -q "$@" tests
