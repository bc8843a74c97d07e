"""The one place that builds a `tf.distribute` strategy, and says which
process of it writes files.

Under `MultiWorkerMirroredStrategy` every worker runs the same program;
only the chief writes what a run leaves behind (checkpoints, model file,
export, TensorBoard and CSV logs, summaries). The others still go through
the same saving code, into a private temporary folder that is then deleted:
saving may take part in collective operations that every worker must join.
"""

import contextlib
import dataclasses
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from srdc_tf.clustering import shards as shards_lib

STRATEGIES = ("default", "mirrored", "multi_worker")
# Default of --peer_timeout: how long a multi-worker process waits for the
# other workers, which a scheduler may start minutes apart.
DEFAULT_PEER_TIMEOUT = 600


def cluster_peers(tf_config):
  """The other tasks of a multi-worker cluster, from its `TF_CONFIG`.

  Args:
    tf_config: the `TF_CONFIG` text.

  Returns:
    `[(task name, address)]` of every task but this one, e.g.
    `[("worker-1", "host2:12345")]`.

  Raises:
    ValueError: `TF_CONFIG` is not JSON, or lacks a cluster, or its task is
      not one of the cluster's; quoting what it holds.
  """
  try:
    config = json.loads(tf_config)
  except json.JSONDecodeError as error:
    raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
  cluster = config.get("cluster") if isinstance(config, dict) else None
  task = config.get("task") if isinstance(config, dict) else None
  if (not isinstance(cluster, dict) or not isinstance(task, dict)
      or not all(isinstance(addresses, list)
                 for addresses in cluster.values())):
    raise ValueError(
        "TF_CONFIG needs a 'cluster' of task lists and a 'task', e.g. "
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": '
        f'{{"type": "worker", "index": 0}}}}; got {tf_config!r}')
  own_type, own_index = task.get("type"), task.get("index")
  if (own_type not in cluster or not isinstance(own_index, int)
      or not 0 <= own_index < len(cluster[own_type])):
    raise ValueError(
        f"TF_CONFIG's task {task!r} is not one of its cluster's tasks "
        f"{cluster!r}")
  return [(f"{task_type}-{index}", address)
          for task_type, addresses in sorted(cluster.items())
          for index, address in enumerate(addresses)
          if (task_type, index) != (own_type, own_index)]


# Run beside a process that waits for its peers: after `timeout` seconds
# without word from it (its stdin closing), names the peers that do not
# accept a connection. A separate process, because the wait blocks inside
# TensorFlow with the GIL held: no Python thread of the process runs.
_WATCHDOG = """
import json, select, socket, sys
timeout, peers, flag = float(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
if select.select([sys.stdin], [], [], timeout)[0]:
  sys.exit(0)
missing = []
for name, address in peers:
  host, _, port = address.rpartition(":")
  try:
    socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
  except (OSError, ValueError):
    missing.append(name + " at " + address)
if missing:
  what = ", ".join(missing) + (" does" if len(missing) == 1 else " do")
  what += " not answer"
else:
  what = ("every peer (" + ", ".join(n + " at " + a for n, a in peers)
          + ") answers, but the cluster did not form")
sys.stderr.write(
    "error: --strategy=multi_worker: " + what + " after %g s (" % timeout
    + flag + "); start every worker of TF_CONFIG's cluster with the same "
    "cluster and its own task index, or fix the addresses\\n")
sys.stderr.flush()
"""


@contextlib.contextmanager
def peer_timeout(peers, timeout_seconds, flag="--peer_timeout"):
  """Ends the process (status 1) if the block takes longer than
  `timeout_seconds`, with a message naming the peers that do not answer.

  Args:
    peers: `[(task name, address)]`, as `cluster_peers` gives.
    timeout_seconds: how long the block may take.
    flag: the setting named in the message.

  Yields:
    Nothing.
  """
  watchdog = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-I", "-c", _WATCHDOG, str(timeout_seconds),
       json.dumps(peers), flag], stdin=subprocess.PIPE,
      stdout=subprocess.DEVNULL)
  # The exit itself: a C thread of faulthandler, which needs no GIL; the
  # traceback it writes goes nowhere, the watchdog has said what happened.
  with open(os.devnull, "w") as nowhere:
    faulthandler.dump_traceback_later(timeout_seconds + 3, exit=True,
                                      file=nowhere)
    try:
      yield
    finally:
      faulthandler.cancel_dump_traceback_later()
      watchdog.stdin.close()
      watchdog.wait()


def create_strategy(name="default", num_cpu_devices=0,
                    peer_timeout_seconds=DEFAULT_PEER_TIMEOUT):
  """Builds a distribution strategy.

  Args:
    name: "default" (one device), "mirrored" (every local GPU, or
      `num_cpu_devices` logical CPUs when given: for testing without GPUs),
      or "multi_worker" (MultiWorkerMirroredStrategy configured by the
      `TF_CONFIG` environment variable).
    num_cpu_devices: split the CPU into this many logical devices for
      "mirrored". Must be called before TensorFlow initialises its devices.
    peer_timeout_seconds: for "multi_worker", how long to wait for every
      worker of the cluster to join; after it the process ends (status 1)
      naming the peers that do not answer (see `peer_timeout`).

  Returns:
    A `tf.distribute.Strategy`.
  """
  if name not in STRATEGIES:
    raise ValueError(f"--strategy must be one of {STRATEGIES}, got {name!r}")
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("--strategy=multi_worker needs the TF_CONFIG "
                       "environment variable (cluster and task)")
    peers = cluster_peers(os.environ["TF_CONFIG"])
    if peer_timeout_seconds <= 0:
      raise ValueError(
          f"--peer_timeout must be > 0, got {peer_timeout_seconds!r}")
    # Building the strategy connects to every peer, and waits forever for
    # one that is missing.
    with peer_timeout(peers, peer_timeout_seconds):
      return tf.distribute.MultiWorkerMirroredStrategy()
  if num_cpu_devices and num_cpu_devices > 0:
    split_cpu(num_cpu_devices)
    devices = [f"/cpu:{i}" for i in range(num_cpu_devices)]
    return tf.distribute.MirroredStrategy(devices)
  return tf.distribute.MirroredStrategy()


def split_cpu(num_devices):
  """Splits the physical CPU into `num_devices` logical devices (once)."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  existing = tf.config.get_logical_device_configuration(cpu)
  if existing and len(existing) >= num_devices:
    return
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def is_chief(strategy=None):
  """Whether this process writes the run's files (always, but for the
  non-chief workers of a multi-worker strategy)."""
  strategy = strategy or tf.distribute.get_strategy()
  return bool(strategy.extended.should_checkpoint)


def worker_name(strategy=None):
  """`<task type>-<task id>` of a multi-worker process, else "local"."""
  strategy = strategy or tf.distribute.get_strategy()
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return "local"
  return f"{resolver.task_type}-{resolver.task_id}"


@contextlib.contextmanager
def write_location(path, strategy=None):
  """Yields where this process writes `path`: `path` itself on the chief,
  else a temporary folder, deleted on exit, that takes its place.

  Args:
    path: a file or folder path of the chief's.
    strategy: the strategy (default: the current one).

  Yields:
    A path to write to.
  """
  if is_chief(strategy):
    yield path
    return
  scratch = tempfile.mkdtemp(prefix=f"srdc-{worker_name(strategy)}-")
  try:
    yield os.path.join(scratch, os.path.basename(os.path.normpath(path)))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class EpochSharding:
  """How the per-epoch pass splits a domain: one shard per replica in sync.

  Attributes:
    shard_ids: the shards of this process' replicas.
    num_shards: shards over every process (the replicas in sync).
    sum_over_shards: sums a list of this process' per-shard tensors (in
      `shard_ids` order) over every shard of every process: an all-reduce
      across replicas and workers, or a local sum for one replica (see
      `clustering.shards`).
  """
  shard_ids: tuple
  num_shards: int
  sum_over_shards: object

  def dataset_shards(self, num_examples):
    """`(shard_id, num_shards)` of each of this process' shards of a domain
    of `num_examples`, or `[None]` (the whole domain) for one shard."""
    if self.num_shards == 1:
      return [None]
    if num_examples < self.num_shards:
      raise ValueError(f"a domain of {num_examples} examples cannot give "
                       f"each of {self.num_shards} replicas one")
    return [(shard_id, self.num_shards) for shard_id in self.shard_ids]


def epoch_sharding(strategy=None):
  """The `EpochSharding` of a strategy's replicas.

  Args:
    strategy: a `tf.distribute.Strategy` (default: the current one).

  Returns:
    An `EpochSharding`; every process of a multi-worker cluster must call
    its `sum_over_shards` alike (the same calls, the same shapes, in the
    same order), as any collective.
  """
  strategy = strategy or tf.distribute.get_strategy()
  num_shards = int(strategy.num_replicas_in_sync)
  if num_shards == 1:
    return EpochSharding((0,), 1, shards_lib.local_sum)
  shard_ids = tuple(
      int(value) for value in strategy.experimental_local_results(
          strategy.experimental_distribute_values_from_function(
              lambda context: tf.constant(context.replica_id_in_sync_group))))

  def sum_over_shards(per_shard):
    if len(per_shard) != len(shard_ids):
      raise ValueError(f"{len(per_shard)} values for the {len(shard_ids)} "
                       f"shards of this process")
    by_shard = dict(zip(shard_ids, per_shard))
    values = strategy.experimental_distribute_values_from_function(
        lambda context: tf.identity(
            by_shard[context.replica_id_in_sync_group]))
    return tf.convert_to_tensor(strategy.reduce(
        tf.distribute.ReduceOp.SUM, values, axis=None))

  return EpochSharding(shard_ids, num_shards, sum_over_shards)
