"""Training on several GPUs or machines with TensorFlow's own `tf.distribute`.

Strategies. `none`: the single-process loop of `train.fit`. `mirrored`: MirroredStrategy
over this machine's GPUs (one replica on a CPU-only machine). `multi-worker`:
MultiWorkerMirroredStrategy, one process per machine (or per local worker), the cluster
read from TF_CONFIG as TensorFlow documents it; `--workers host:port,... --task-index i`
writes that TF_CONFIG. `auto`: multi-worker when TF_CONFIG names more than one worker,
mirrored when more than one GPU is visible, else none.

Semantics (also in docs/distributed.md):
- `--batch-size` is the GLOBAL batch, as in Keras's `fit` under a strategy: each step
  trains on that many clips in all, split over the replicas. Nothing is rescaled: with k
  times the global batch, the linear rule (Goyal et al. 2017) says try k times the --lr.
- Data are sharded by clip, before decoding: every worker draws the same order for an
  epoch (numpy, from --seed and the epoch), cuts it into global batches, and decodes only
  its replicas' share of each batch (clip j of a batch goes to replica j mod R). tf.data's
  own auto-sharding is off: DATA sharding would decode every clip on every worker and
  keep 1/N of them, and FILE sharding needs file-reading ops that a clip list has not.
  The replicas' shares of one step together are exactly that step's global batch, so the
  steps, and the weights, are those of one process trained on the same batches. The last
  batch of an epoch is trained on only if it has at least one clip per replica.
- Only the chief (worker 0, or the `chief` task) writes the run folder. The others save
  their checkpoints, as MultiWorkerMirroredStrategy needs every worker to, into a
  temporary folder removed after each save; they never touch the run folder.
- A worker that dies makes the others fail within the coordination service's heartbeat
  (tens of seconds) with one line; relaunching every worker with --resume continues from
  the last completed epoch. With several machines, --resume reads the run folder on every
  worker, so it must be on a filesystem they share (as Keras's BackupAndRestore needs).
- The cluster start has a timeout: a worker that cannot reach the others in time exits
  with one line naming the workers it could not reach.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidaction.errors import UserError, VidactionError

STRATEGIES = ("auto", "none", "mirrored", "multi-worker")
DEFAULT_CLUSTER_TIMEOUT = 300.0
THREADS_ENV = "VIDACTION_THREADS"  # set by the local launcher: this worker's share of cores
_HEARTBEAT_MS = 10_000


class ClusterError(VidactionError):
    """The cluster could not form, or lost a worker."""


# ------------------------------------------------------------------------------ TF_CONFIG


@dataclass(frozen=True)
class Cluster:
    """This process's place in a TF_CONFIG cluster (chief first, then workers)."""

    addresses: tuple[str, ...]
    task_type: str
    index: int
    has_chief: bool

    @property
    def id(self) -> int:
        return self.index + 1 if self.has_chief and self.task_type == "worker" else self.index

    @property
    def is_chief(self) -> bool:
        return self.id == 0

    @property
    def address(self) -> str:
        return self.addresses[self.id]

    @property
    def size(self) -> int:
        return len(self.addresses)


def _check_address(addr, where: str) -> str:
    if not isinstance(addr, str) or ":" not in addr:
        raise UserError(f"{where}: {addr!r} is not host:port")
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{where}: {addr!r} is not host:port")
    return addr


def read_tf_config(text: str | None) -> Cluster:
    """TF_CONFIG as TensorFlow reads it; anything wrong is one line naming what."""
    if not text:
        raise UserError("--strategy multi-worker needs TF_CONFIG (or --workers and "
                        "--task-index, or --local-workers N)")
    try:
        conf = json.loads(text)
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not JSON ({e})") from None
    if not isinstance(conf, dict) or not isinstance(conf.get("cluster"), dict):
        raise UserError('TF_CONFIG has no "cluster" object')
    if not isinstance(conf.get("task"), dict):
        raise UserError('TF_CONFIG has no "task" object (its "type" and "index")')
    cluster = conf["cluster"]
    for job in cluster:
        if job not in ("chief", "worker"):
            raise UserError(f'TF_CONFIG: job "{job}" is not supported (only "chief" and '
                            '"worker": MultiWorkerMirroredStrategy has no parameter servers '
                            'or evaluator here)')
    chief = cluster.get("chief") or []
    workers = cluster.get("worker") or []
    if not isinstance(chief, list) or not isinstance(workers, list) or len(chief) > 1:
        raise UserError('TF_CONFIG: "chief" must list at most one address and "worker" '
                        'a list of them')
    addresses = tuple(_check_address(a, "TF_CONFIG") for a in [*chief, *workers])
    if not addresses:
        raise UserError("TF_CONFIG: the cluster lists no workers")
    if len(set(addresses)) < len(addresses):
        raise UserError("TF_CONFIG: an address appears twice in the cluster")
    task_type, index = conf["task"].get("type"), conf["task"].get("index")
    if task_type not in ("chief", "worker"):
        raise UserError(f'TF_CONFIG: task type {task_type!r} is not "chief" or "worker"')
    jobs = chief if task_type == "chief" else workers
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs):
        raise UserError(f"TF_CONFIG: task index {index!r} is not one of the "
                        f"{len(jobs)} {task_type} address(es)")
    return Cluster(addresses, task_type, index, bool(chief))


def tf_config_for(workers: str, index: int) -> str:
    """The TF_CONFIG of worker `index` of `host:port,host:port,...` (worker 0 is chief)."""
    addresses = [w.strip() for w in workers.split(",") if w.strip()]
    for a in addresses:
        _check_address(a, "--workers")
    if not 0 <= index < len(addresses):
        raise UserError(f"--task-index {index} is not one of the {len(addresses)} --workers")
    return json.dumps({"cluster": {"worker": addresses},
                       "task": {"type": "worker", "index": index}})


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports free now on `host` (held together while picked, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_port(address: str) -> None:
    """This worker's own port must be free: TensorFlow would fail on it with a long log."""
    port = int(address.rpartition(":")[2])
    s = socket.socket()
    try:
        s.bind(("", port))
    except OSError as e:
        why = "in use by another program" if e.errno == errno.EADDRINUSE else \
            (e.strerror or str(e))
        raise ClusterError(f"cannot listen on port {port} of this worker's address "
                           f"{address}: {why}; free it or give this worker another port") \
            from None
    finally:
        s.close()


def reachable(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------------ strategies


@dataclass
class Plan:
    """The strategy chosen, before TensorFlow starts (it must be set up first)."""

    name: str  # "none", "mirrored" or "multi-worker"
    cluster: Cluster | None = None
    timeout: float = DEFAULT_CLUSTER_TIMEOUT
    why: str = ""

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief


def plan_strategy(name: str = "auto", timeout: float | None = None) -> Plan:
    """Resolve `auto` and read TF_CONFIG; refusals are one line."""
    if name not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}")
    timeout = DEFAULT_CLUSTER_TIMEOUT if timeout is None else float(timeout)
    if not timeout > 0:
        raise UserError("--cluster-timeout must be a positive number of seconds")
    env = os.environ.get("TF_CONFIG")
    if name == "auto":
        if env:
            cluster = read_tf_config(env)
            if cluster.size > 1:
                return Plan("multi-worker", cluster, timeout,
                            f"TF_CONFIG names {cluster.size} workers")
        gpus = _gpu_count()
        if gpus > 1:
            return Plan("mirrored", None, timeout, f"{gpus} GPUs")
        return Plan("none")
    if name == "multi-worker":
        return Plan(name, read_tf_config(env), timeout)
    return Plan(name)


def _gpu_count() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


@dataclass
class Distribution:
    """A started strategy and this process's place in it."""

    strategy: object
    name: str
    num_replicas: int
    num_workers: int
    worker: int
    is_chief: bool
    threads: int | None = None

    @property
    def replicas_per_worker(self) -> int:
        return self.num_replicas // self.num_workers

    def record(self, global_batch: int) -> dict:
        """What the run keeps of how it was trained (config.json and history.json)."""
        per = global_batch / self.num_replicas
        return {"strategy": self.name, "num_replicas": self.num_replicas,
                "num_workers": self.num_workers, "global_batch_size": global_batch,
                "per_replica_batch_size": int(per) if per == int(per) else round(per, 3)}

    def barrier(self) -> None:
        """Every worker gets here before any goes on (one tiny all-reduce)."""
        import tensorflow as tf

        s = self.strategy
        s.reduce(tf.distribute.ReduceOp.SUM, s.run(lambda: tf.constant(1.0)), axis=None)


def set_threads(threads: int | None) -> int | None:
    """One TensorFlow thread pool of `threads` (or $VIDACTION_THREADS) threads; before
    TensorFlow's context starts."""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "")
        threads = int(env) if env.isdigit() and int(env) > 0 else None
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return threads


# The watchdog's reporter: a small process that prints the timeout line once the worker
# ends without having said "ok" (the worker itself cannot: see _Watchdog).
_REPORTER = r"""
import socket, sys, time
t0, timeout, head, others = time.time(), float(sys.argv[1]), sys.argv[2], sys.argv[3:]
if sys.stdin.read() == "ok" or time.time() - t0 < timeout - 1:
    sys.exit(0)
def up(a):
    host, _, port = a.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
        return True
    except OSError:
        return False
silent = [a for a in others if not up(a)]
detail = ("nothing answers at " + ", ".join(silent)) if silent else (
    "the other workers answer but did not join (the same TF_CONFIG cluster on every "
    "worker, each with its own index?)")
print(f"vidaction: error: {head}: {detail}; start every worker, check the addresses and "
      "firewalls, or raise --cluster-timeout", file=sys.stderr, flush=True)
"""


class _Watchdog:
    """Ends the process with one line and exit status 1 if the cluster has not formed in
    time. TensorFlow's wait for the other workers blocks in C++ holding the GIL (no Python
    thread runs, and its own register timeout does not hold), so the timer is
    faulthandler's C thread, which exits; a reporter process prints the line."""

    def __init__(self, cluster: Cluster, timeout: float):
        self.cluster, self.timeout = cluster, timeout

    def __enter__(self):
        import faulthandler

        c = self.cluster
        head = (f"the cluster did not start within {self.timeout:g} s (worker {c.id} of "
                f"{c.size}, at {c.address})")
        others = [a for i, a in enumerate(c.addresses) if i != c.id]
        self.reporter = subprocess.Popen(
            [sys.executable, "-c", _REPORTER, str(self.timeout), head, *others],
            stdin=subprocess.PIPE, text=True)
        self.sink = open(os.devnull, "w")  # noqa: SIM115 - held until __exit__
        faulthandler.dump_traceback_later(self.timeout, exit=True, file=self.sink)
        return self

    def __exit__(self, *exc):
        import faulthandler

        faulthandler.cancel_dump_traceback_later()
        self.sink.close()
        with contextlib.suppress(OSError):
            self.reporter.stdin.write("ok")
            self.reporter.stdin.close()
        self.reporter.wait()


def start(plan: Plan, threads: int | None = None) -> Distribution | None:
    """Create the strategy (None for `none`). Must run before any other TensorFlow op of
    the process; multi-worker blocks until every worker has joined, or the timeout."""
    if plan.name == "none":
        set_threads(threads)
        return None
    import tensorflow as tf

    threads = set_threads(threads)
    if plan.name == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        strategy = tf.distribute.MirroredStrategy() if gpus else \
            tf.distribute.MirroredStrategy(["/cpu:0"])
        return Distribution(strategy, "mirrored", strategy.num_replicas_in_sync, 1, 0, True,
                            threads)
    cluster = plan.cluster
    check_port(cluster.address)
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as cc
    from tensorflow.python.eager import context

    jobs = [cc.CoordinatedJob(name=j, num_tasks=n) for j, n in
            (("chief", int(cluster.has_chief)), ("worker", cluster.size - cluster.has_chief))
            if n]
    leader = "/job:chief/replica:0/task:0" if cluster.has_chief else \
        "/job:worker/replica:0/task:0"
    # A dead worker is noticed by the others through missed heartbeats (then their next
    # collective fails, instead of waiting for ever).
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader, coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=_HEARTBEAT_MS,
        cluster_register_timeout_in_ms=int(plan.timeout * 1000))
    gpus = tf.config.list_physical_devices("GPU")
    comm = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO if gpus
        else tf.distribute.experimental.CommunicationImplementation.RING)
    with _Watchdog(cluster, plan.timeout):
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=comm)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise ClusterError(f"the cluster could not start: {_first_line(e)}") from None
        dist = Distribution(strategy, "multi-worker", strategy.num_replicas_in_sync,
                            cluster.size, cluster.id, cluster.is_chief, threads)
        dist.barrier()  # every worker is there and collectives work
    return dist


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def lost_worker(e: BaseException) -> ClusterError:
    """A collective that failed because a worker went away, as one line."""
    msg = str(e)
    who = ""
    for line in msg.splitlines():
        if "/job:" in line and "task:" in line and "unhealthy" not in line:
            who = line.strip()
            break
    return ClusterError("a worker of the cluster stopped" + (f" ({who})" if who else "")
                        + "; the run stops here: relaunch every worker with --resume to "
                        "continue from the last completed epoch")


# ------------------------------------------------------------------------------ data


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The clip order of one epoch: the same on every worker, and on a resume."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def replica_pieces(order: np.ndarray, global_batch: int, replicas: int,
                   drop_short: bool = True) -> list[list[np.ndarray]]:
    """Per step, per replica: the items of that step's global batch (item j of a batch
    to replica j mod R). `drop_short`: a last batch with fewer items than replicas is
    left out (training); else its replicas get what there is, some none (validation)."""
    steps = []
    for s in range(0, len(order), global_batch):
        batch = order[s:s + global_batch]
        if drop_short and len(batch) < replicas:
            break
        steps.append([batch[r::replicas] for r in range(replicas)])
    return steps


def worker_items(pieces: list[list[np.ndarray]], dist_worker: int,
                 per_worker: int) -> tuple[np.ndarray, list[int]]:
    """The items one worker feeds its local replicas, in order, and the size of each
    per-replica batch."""
    items, sizes = [], []
    for step in pieces:
        for r in range(dist_worker * per_worker, (dist_worker + 1) * per_worker):
            items.append(step[r])
            sizes.append(len(step[r]))
    flat = np.concatenate(items).astype(np.int64) if items else np.zeros(0, np.int64)
    return flat, sizes


def clip_dataset_fn(clips, sampling, training: bool, global_batch: int, seed: int,
                    epochs: tuple[int, int], num_replicas: int, cache_dir=None,
                    augment=None, skips=None):
    """(dataset_fn for Keras's DatasetCreator, steps per epoch).

    Training: the epochs `epochs[0]`..`epochs[1] - 1` back to back (Keras keeps one
    iterator for all of them), each in `epoch_order`. Validation: one pass in file order.
    dataset_fn(input_context) gives that worker's per-replica batches; unreadable clips
    are dropped from their batch (counted in `skips`), never from the step count, so
    every worker runs the same number of steps.
    """
    from vidaction.data.pipeline import ClipLoader, SkipLog

    paths = np.array([str(c.path) for c in clips])
    labels = np.array([int(c.label) for c in clips], np.int32)
    n = len(clips)
    if training:
        per_epoch = [replica_pieces(epoch_order(n, seed, e), global_batch, num_replicas)
                     for e in range(*epochs)]
        rand = [np.random.default_rng([seed, e, 1]).integers(0, 2**31 - 1, n)
                for e in range(*epochs)]
    else:
        per_epoch = [replica_pieces(np.arange(n), global_batch, num_replicas, False)]
        rand = [np.zeros(n, np.int64)]
    steps = len(per_epoch[0]) if per_epoch else 0
    skips = skips if skips is not None else SkipLog()
    cache = None
    if cache_dir is not None:
        from vidaction.data.cache import ClipCache

        cache = ClipCache(cache_dir)
    jitter = augment.time_jitter if augment is not None and cache is None else 0.0
    loader = ClipLoader(sampling, training, 1, cache, skips, time_jitter=jitter)
    T, S = sampling.n_frames, sampling.size

    def dataset_fn(ctx):
        import tensorflow as tf

        from vidaction.data.augment import augment_clip

        per_worker = num_replicas // ctx.num_input_pipelines
        idx, rnd, sizes = [], [], []
        for pieces, r in zip(per_epoch, rand, strict=True):
            items, sz = worker_items(pieces, ctx.input_pipeline_id, per_worker)
            idx.append(items)
            rnd.append(r[items])
            sizes += sz
        idx = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        rnd = np.concatenate(rnd).astype(np.int64) if rnd else np.zeros(0, np.int64)
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], labels[idx], rnd))

        def _load(path, label, r):
            clip, _, ok = tf.numpy_function(
                lambda p, x: loader.load(p.decode(), 0, int(x) & 0x7FFFFFFF),
                [path, r], [tf.uint8, tf.bool, tf.bool], stateful=training)
            clip.set_shape((T, S, S, 3))
            ok.set_shape(())
            if augment is not None:
                clip = augment_clip(clip, tf.stack([r, tf.cast(seed, tf.int64)]), augment)
            return clip, label, ok

        ds = ds.map(_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(1).rebatch(tf.constant(sizes or [0], tf.int64))
        # an unreadable clip leaves its batch, not the step: every worker keeps in step
        ds = ds.map(lambda c, y, ok: (tf.boolean_mask(c, ok), tf.boolean_mask(y, ok)))
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.OFF  # sharded above, by clip
        if os.environ.get(THREADS_ENV, "").isdigit():
            opts.threading.private_threadpool_size = max(int(os.environ[THREADS_ENV]), 1)
        return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)

    return dataset_fn, steps


class WorkerTemp:
    """Where a non-chief worker saves what Keras makes every worker save: a temporary
    folder, emptied after each save and removed at the end."""

    def __init__(self, out, worker: int):
        # one name per run and worker: a relaunch removes what a killed worker left
        import hashlib

        digest = hashlib.sha1(os.path.abspath(out).encode()).hexdigest()[:12]
        self.path = Path(tempfile.gettempdir()) / f"vidaction-worker{worker}-{digest}"
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def clear(self) -> None:
        for p in self.path.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class WorkerFolder:
    """What a non-chief worker has in place of train.folder.RunFolder: the run's path, to
    read (--resume), and nothing it may write or lock."""

    def __init__(self, path):
        self.path = self.work = Path(path)

    def check(self) -> str:
        return "absent"

    def lock_for_resume(self) -> None:
        pass

    def begin(self) -> Path:
        return self.work

    def commit(self) -> Path:
        return self.path

    def abort(self) -> None:
        pass


def restore_readonly(ckpt, last_dir: Path) -> int:
    """A non-chief worker on --resume: the newest intact epoch the chief saved (on a
    filesystem every worker reads), restored without repairing or writing anything."""
    from vidaction.train.resume import pick_checkpoint

    if not Path(last_dir).parent.parent.joinpath("config.json").is_file():
        raise ClusterError(f"{Path(last_dir).parent.parent}: no run to resume on this "
                           "worker; with several machines --out must be on a filesystem "
                           "every worker reads")
    prefix = pick_checkpoint(Path(last_dir))
    if prefix is None:
        return 0
    ckpt.restore(prefix).expect_partial()
    return int(ckpt.epoch.numpy())


def finish(dist: Distribution, build, last_dir: Path):
    """After training: once every worker is done saving, the chief rebuilds the model
    outside the strategy and loads the newest epoch into it (the caller then loads the
    best one), so the final save needs no collective; other workers get None."""
    import tensorflow as tf

    from vidaction.train.resume import pick_checkpoint

    dist.barrier()
    if not dist.is_chief:
        return None
    model = build("none")
    prefix = pick_checkpoint(Path(last_dir))
    if prefix is not None:
        tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
    return model


# ------------------------------------------------------------------------------ launcher


def launch_local(argv: list[str], n: int, cores: int | None = None,
                 poll: float = 0.2) -> int:
    """Run `vidaction train ARGV --strategy multi-worker` as `n` workers on 127.0.0.1 with
    free ports, each with `cores // n` TensorFlow threads ($VIDACTION_THREADS if set).
    Worker 0's output is streamed; the others' go to log files. The first worker to fail
    stops the others, and its line is the one printed; returns the exit status (0 when
    all finished)."""
    if n < 1:
        raise UserError("--local-workers must be at least 1")
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
    env = os.environ.get(THREADS_ENV, "")
    threads = int(env) if env.isdigit() and int(env) > 0 else max(cores // n, 1)
    ports = free_ports(n)
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    logs = Path(tempfile.mkdtemp(prefix="vidaction-workers-"))
    keep = None
    procs: list[subprocess.Popen] = []
    files = []
    print(f"local cluster: {n} worker(s) on 127.0.0.1 ports {', '.join(map(str, ports))}, "
          f"{threads} thread(s) each; worker 0 is the chief", flush=True)
    try:
        for i in range(n):
            env = {**os.environ, "TF_CONFIG": tf_config_for(workers, i),
                   THREADS_ENV: str(threads), "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
            cmd = [sys.executable, "-m", "vidaction.cli", "train", *argv,
                   "--strategy", "multi-worker"]
            if i == 0:
                out = err = None
            else:
                out = open(logs / f"worker{i}.out", "wb")  # noqa: SIM115 - closed below
                err = open(logs / f"worker{i}.err", "wb")  # noqa: SIM115
                files += [out, err]
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=err,
                                          start_new_session=True))
        while True:
            codes = [p.poll() for p in procs]
            failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i = failed[0]
                if i != 0 and codes[i] > 0:  # the same bad input fails every worker:
                    # the chief's line wins (a killed worker is named, at once)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        procs[0].wait(2.0)
                    if procs[0].returncode not in (None, 0):
                        i, codes[0] = 0, procs[0].returncode
                _stop(procs)
                if i == 0 and codes[0] > 0:  # the chief printed its own line
                    return codes[0]
                keep = logs  # the failed worker's whole log, for whoever wants the rest
                print(f"vidaction: error: {_worker_failure(i, codes[i], logs)}; the other "
                      f"workers were stopped (worker logs: {logs})", file=sys.stderr,
                      flush=True)
                return 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(poll)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    finally:
        for f in files:
            f.close()
        if keep is None:
            shutil.rmtree(logs, ignore_errors=True)


def _stop(procs: list[subprocess.Popen], grace: float = 3.0) -> None:
    """Every worker still running: SIGTERM, then SIGKILL (TensorFlow waiting on a
    collective in C++ does not act on SIGTERM)."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + grace
    for p in live:
        try:
            p.wait(max(deadline - time.time(), 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _worker_failure(i: int, code: int, logs: Path) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"worker {i} was killed ({name}); relaunch with --resume to continue from "
                "the last completed epoch")
    try:
        lines = (logs / f"worker{i}.err").read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    mine = [ln for ln in lines if ln.startswith("vidaction: error: ")]
    last = mine[-1][len("vidaction: error: "):] if mine else (lines[-1] if lines else "")
    return f"worker {i} failed (exit {code})" + (f": {last}" if last else "")


def non_chief(strategy: str | None) -> bool:
    """This process is a worker other than the chief of a TF_CONFIG cluster (read without
    TensorFlow; a bad TF_CONFIG is refused here, in one line)."""
    env = os.environ.get("TF_CONFIG")
    if strategy not in (None, "auto", "multi-worker") or not env:
        return False
    return not read_tf_config(env).is_chief


def sync_batch_norm(model) -> int:
    """Every trainable batch-norm layer computes its batch statistics over the global batch
    (all replicas), not its replica's share: with video-sized batches of 1 or 2 clips per
    replica, per-replica statistics would train another model than one process does.
    Returns how many layers were switched (frozen ones compute no batch statistics)."""
    from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase

    n = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, BatchNormalizationBase) and layer.trainable \
                and not layer.synchronized:
            layer.synchronized, layer.fused = True, False  # fused kernels do not sync
            n += 1
    return n
