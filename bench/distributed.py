"""Distributed training overhead: 1 worker against 2 local workers, and the all-reduce.

(a) `vidaction train` on the built-in set (rgb-diff, its native 8 x 48 px clips) as one
    process with 1 TensorFlow thread (--strategy none), as `--local-workers 1` (the
    strategy's code path, no peer: its own cost) and as `--local-workers 2` (two
    MultiWorkerMirroredStrategy workers on 127.0.0.1, 1 thread each): clips/s over the
    epochs after the first (an epoch's time includes its validation pass; the first pays
    for tracing), read from the time between the chief's epoch lines.
(b) the all-reduce alone: 2 workers all-reduce tensors of the shapes of rgb-diff's
    trainable variables (its gradient, what one step sends), many times; ms per step.
On one machine's cores two workers do not beat one process: the figure is the overhead.
Prints the figures and writes bench/results/distributed.json.

    python bench/distributed.py [--clips-per-class 8] [--epochs 4] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "distributed.json"


def _epoch_times(cmd: list[str], env: dict) -> tuple[list[float], str]:
    """Run a train command; the wall time at which each 'epoch N/M:' line came."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    stamps, lines = [], []
    for line in proc.stdout:
        lines.append(line)
        if re.match(r"epoch \d+/\d+:", line):
            stamps.append(time.time() - t0)
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"train failed: {err[-2000:]}")
    return stamps, "".join(lines)


def _train_bench(data: Path, work: Path, args) -> dict:
    base = [sys.executable, "-m", "vidaction.cli", "train", "--data", str(data),
            "--model", "rgb-diff", "--epochs", str(args.epochs), "--batch-size",
            str(args.batch_size), "--no-progress", "--cache-samples", "0"]
    n_train = sum(1 for _ in (data / "train").rglob("*.mp4"))
    n_val = sum(1 for _ in (data / "val").rglob("*.mp4"))
    out = {}
    for name, extra, env in (
            ("1 worker, 1 thread", ["--strategy", "none"], {"VIDACTION_THREADS": "1"}),
            ("1 local worker, 1 thread", ["--local-workers", "1"],
             {"VIDACTION_THREADS": "1"}),
            ("2 local workers, 1 thread each", ["--local-workers", "2"], {})):
        run = work / name.split(",")[0].replace(" ", "-")
        stamps, text = _epoch_times([*base, *extra, "--out", str(run)],
                                    {**os.environ, **env, "CUDA_VISIBLE_DEVICES": ""})
        per_epoch = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        rest = n_train % args.batch_size  # a last batch under 2 clips: not trained on 2
        used = n_train - (rest if "2 local" in name and rest < 2 else 0)
        out[name] = {"epoch_s": round(per_epoch, 2), "first_epoch_s": round(stamps[0], 1),
                     "train_clips_per_s": round(used / per_epoch, 2),
                     "train_clips": used, "val_clips": n_val}
        print(f"{name:32s} {per_epoch:6.2f} s/epoch  {used / per_epoch:6.2f} training "
              f"clips/s (+{n_val} val clips per epoch)", flush=True)
    one, strat, two = out.values()
    out["ratio_2_workers_over_1_process"] = round(
        two["train_clips_per_s"] / one["train_clips_per_s"], 3)
    out["ratio_1_strategy_worker_over_1_process"] = round(
        strat["train_clips_per_s"] / one["train_clips_per_s"], 3)
    return out


_ALLREDUCE = r"""
import json, os, sys, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import vidaction  # noqa: F401 - quiet TensorFlow logs
from vidaction.train import distribute as dd
plan = dd.plan_strategy("multi-worker", 120)
dist = dd.start(plan, threads=1)
import tensorflow as tf
from vidaction.models import create_model
with dist.strategy.scope():
    model = create_model("rgb-diff", 10)
shapes = [v.shape for v in model.trainable_variables]
grads = [tf.ones(s) for s in shapes]
@tf.function
def step():
    def fn():
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    return dist.strategy.run(fn)
for _ in range(5):
    step()
n = int(sys.argv[1]); t = time.perf_counter()
for _ in range(n):
    out = step()
_ = [o.numpy() for o in tf.nest.flatten(out)[:1]]
ms = (time.perf_counter() - t) / n * 1e3
if dist.is_chief:
    print(json.dumps({"ms_per_allreduce": ms, "tensors": len(shapes),
                      "floats": int(sum(s.num_elements() for s in shapes))}))
"""


def _allreduce_bench(steps: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from vidaction.train.distribute import free_ports, tf_config_for

    ports = free_ports(2)
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    procs = [subprocess.Popen([sys.executable, "-c", _ALLREDUCE, str(steps)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "TF_CONFIG": tf_config_for(workers, i),
                                   "CUDA_VISIBLE_DEVICES": ""}) for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    got = json.loads(outs[0].strip().splitlines()[-1])
    print(f"all-reduce of rgb-diff's gradient ({got['tensors']} tensors, {got['floats']} "
          f"floats), 2 workers on loopback: {got['ms_per_allreduce']:.2f} ms per step",
          flush=True)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips-per-class", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--allreduce-steps", type=int, default=200)
    ap.add_argument("--notes", default="")
    args = ap.parse_args()
    from vidaction.data.builtin import render_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    data = render_dataset(work / "builtin", clips_per_class=args.clips_per_class,
                          seconds=2.0, progress=False)
    load0 = os.getloadavg()
    train = _train_bench(data, work, args)
    allreduce = _allreduce_bench(args.allreduce_steps)
    result = {
        "what": __doc__.split("\n\n")[0],
        "config": {"model": "rgb-diff", "dataset": "built-in set, "
                   f"{args.clips_per_class} clips per class, 2 s, 128 px",
                   "epochs": args.epochs, "global_batch_size": args.batch_size},
        "train": train,
        "allreduce": allreduce,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load0],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "notes": args.notes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
