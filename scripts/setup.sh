#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the package in it, editable with
# its dev extra and the exact versions of requirements-dev.txt (which gives
# the console scripts srdc-train, srdc-predict, ...); a no-op when nothing
# changed since the last install. Sourced by demo.sh and test.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want="$(cat "$repo/requirements.txt" "$repo/requirements-dev.txt" \
  "$repo/pyproject.toml" | sha1sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing srdc-tf and its requirements into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  # The editable build warns that a folder named like the package may
  # shadow it; here that folder is the package.
  PYTHONWARNINGS="ignore:Editable installation" \
    "$venv/bin/python" -m pip install -q -r "$repo/requirements-dev.txt" \
    -e "$repo[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$repo"
