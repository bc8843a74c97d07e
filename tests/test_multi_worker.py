"""Two worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy
train like one process on the same global batch, end with the same
weights and per-sample tables, and only the chief writes the run's files."""

import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

import run_testlib
from srdc_tf.data import pipeline
from srdc_tf.data import sources
from srdc_tf.data import transforms

TIMEOUT = 240  # Seconds for the whole cluster; both workers die after it.
ARGS = [*run_testlib.TINY_RUN, "--epochs=2", "--steps_per_epoch=3",
        "--checkpoint_every_steps=2", "--deterministic", "--select_by=last"]


def _tf_config(ports, index):
  return json.dumps({
      "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
      "task": {"type": "worker", "index": index}})


def _wait_all(processes, deadline):
  while any(p.poll() is None for p in processes):
    if time.time() > deadline:
      raise TimeoutError(f"still running after {TIMEOUT}s")
    time.sleep(0.2)


@pytest.mark.e2e
def test_two_workers_agree_with_each_other_and_with_one_process(tmp_path):
  ports = [run_testlib.free_port(), run_testlib.free_port()]
  shared_dir, weights_dir = tmp_path / "multi", tmp_path / "weights"
  single_dir = tmp_path / "single"
  processes, logs = [], []
  try:
    for index in range(2):
      logs.append(tmp_path / f"worker-{index}.log")
      processes.append(run_testlib.start_training(
          *ARGS, "--strategy=multi_worker", f"--model_dir={shared_dir}",
          f"--worker_weights_dir={weights_dir}", log_path=logs[-1],
          TF_CONFIG=_tf_config(ports, index)))
    # The same run in one process, on the same global batch, meanwhile.
    logs.append(tmp_path / "single.log")
    processes.append(run_testlib.start_training(
        *ARGS, "--strategy=default", f"--model_dir={single_dir}",
        f"--worker_weights_dir={single_dir / 'weights'}", log_path=logs[-1]))
    _wait_all(processes, time.time() + TIMEOUT)
  finally:
    for process in processes:
      run_testlib.stop(process)
  for process, log in zip(processes, logs):
    assert process.returncode == 0, log.read_text()[-4000:]

  chief = run_testlib.read_weights(weights_dir / "worker-0.weights.h5")
  other = run_testlib.read_weights(weights_dir / "worker-1.weights.h5")
  single = run_testlib.read_weights(
      single_dir / "weights" / "local.weights.h5")
  assert set(chief) == set(other) == set(single)
  # Per-sample tables, centres, BatchNorm statistics, optimizer slots: the
  # workers hold the very same values.
  for key in chief:
    np.testing.assert_array_equal(chief[key], other[key], err_msg=key)
  int_tables = [key for key in chief if chief[key].dtype == np.int32]
  assert int_tables, "no target_pseudo_labels table in the weights"
  for key in chief:
    if chief[key].dtype.kind == "f":
      np.testing.assert_allclose(chief[key], single[key], rtol=1e-4,
                                 atol=1e-5, err_msg=key)
    else:
      np.testing.assert_array_equal(chief[key], single[key], err_msg=key)
  moved = max(float(np.max(np.abs(single[k]))) for k in single
              if k.startswith("/optimizer") and single[k].size > 1)
  assert moved > 0, "the optimizer never moved: nothing was compared"

  # The chief wrote the run's files; no worker left a staging file behind.
  names = set(os.listdir(shared_dir))
  assert {"model.keras", "metrics.csv", "logs", "run_info.json",
          "summary.json"} <= names, names
  assert not [n for n in names if n.startswith(".")], names
  assert "backup" not in names  # Removed once the run finished.
  # One process wrote TensorBoard: event file names end in <host>.<pid>...
  writers = {name.split(".")[-3] for _, _, files in os.walk(shared_dir / "logs")
             for name in files if name.startswith("events.out.tfevents")}
  assert len(writers) == 1, writers
  info = json.loads((shared_dir / "run_info.json").read_text())
  assert info["settings"]["deterministic"]


def test_training_and_eval_streams_are_sharded_by_data():
  source = sources.load_domain("synthetic:source",
                               synthetic_examples_per_class=2)
  data = tf.data.experimental.AutoShardPolicy.DATA
  transform = transforms.ImageTransform(16)
  train = pipeline.train_dataset(source, source, 4, transform)
  evaluation = pipeline.eval_dataset(source, 4, transform)
  for dataset in (train, evaluation):
    assert dataset.options().experimental_distribute.auto_shard_policy == data


@pytest.mark.parametrize("index", [0, 1], ids=["chief_alone", "worker_alone"])
def test_a_missing_peer_is_named_after_the_timeout(tmp_path, index):
  ports = [run_testlib.free_port(), run_testlib.free_port()]
  start = time.time()
  result = run_testlib.train(
      *ARGS, "--strategy=multi_worker", "--peer_timeout=4",
      f"--model_dir={tmp_path / 'run'}", timeout=120,
      TF_CONFIG=_tf_config(ports, index))
  missing = f"worker-{1 - index} at 127.0.0.1:{ports[1 - index]}"
  assert result.returncode == 1, result.stderr[-3000:]
  assert (f"error: --strategy=multi_worker: {missing} does not answer after "
          "4 s (--peer_timeout)") in result.stderr
  assert "Traceback" not in result.stderr
  assert time.time() - start < 60
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("config, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG needs a 'cluster'"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", '
     '"index": 3}}', "TF_CONFIG's task {'type': 'worker', 'index': 3} is not "
     "one of its cluster's tasks"),
])
def test_a_bad_tf_config_is_named(tmp_path, config, message):
  result = run_testlib.train(*ARGS, "--strategy=multi_worker",
                             f"--model_dir={tmp_path / 'run'}", timeout=120,
                             TF_CONFIG=config)
  assert result.returncode == 1 and message in result.stderr, result.stderr
  assert "Traceback" not in result.stderr
