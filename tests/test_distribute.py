"""The strategy factory, and replica equivalence under MirroredStrategy."""

import json
import os
import subprocess
import sys

import pytest

from srdc_tf import distribute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mirrored_two_cpus_equals_one_replica():
  result = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "strategy_equivalence.py")],
      capture_output=True, text=True, timeout=600, cwd=REPO,
      env={**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"})
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["replicas"] == 2
  assert report["moved"] > 1e-3  # Training did change the weights...
  assert report["max_diff"] < 1e-5, report  # ...identically on 2 replicas.


@pytest.mark.parametrize("name, message", [
    ("tpu_pod", "--strategy must be one of"),
    ("", "--strategy must be one of"),
])
def test_unknown_strategy_is_named(name, message):
  with pytest.raises(ValueError, match=message) as error:
    distribute.create_strategy(name)
  assert repr(name) in str(error.value)


def test_multi_worker_needs_tf_config(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="TF_CONFIG"):
    distribute.create_strategy("multi_worker")


def test_multi_worker_rejects_bad_tf_config(monkeypatch):
  monkeypatch.setenv("TF_CONFIG", "{not json")
  with pytest.raises(ValueError, match="not valid JSON"):
    distribute.create_strategy("multi_worker")
