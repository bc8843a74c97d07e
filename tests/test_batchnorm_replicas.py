"""Under a mirrored strategy the backbone's unsynchronised BatchNorm keeps
one moving average for all replicas (the mean of the replicas'), not one
per replica that drift apart, and fc1's synchronised BatchNorm uses the
statistics of the global batch."""

import json
import os
import subprocess
import sys

import numpy as np

import run_testlib


def test_moving_statistics_agree_across_replicas():
  result = subprocess.run(
      [sys.executable, os.path.join(run_testlib.REPO, "tests",
                                    "batchnorm_replicas.py")],
      capture_output=True, text=True, timeout=180,
      env=run_testlib.environment())
  assert result.returncode == 0, result.stderr[-3000:]
  copies = json.loads(result.stdout)
  # Momentum 0: the moving mean is the last batch mean. Replica 0 saw a
  # mean of 0 and replica 1 a mean of 10; both copies now hold 5.
  np.testing.assert_allclose(copies["backbone"], [[5.0, 5.0], [5.0, 5.0]])
  np.testing.assert_allclose(copies["fc1"][0], copies["fc1"][1])
