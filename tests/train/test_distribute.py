"""train --strategy / --local-workers: MultiWorkerMirroredStrategy on loopback, a tiny model.

Two workers on 127.0.0.1 train (1 thread each), one is SIGKILLed after epoch 1, the job
stops as a whole, and --resume finishes it; the epoch-1 weights match a one-replica run
on the same global batches; bad clusters fail in one line and bounded time.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY
from vidaction.cli import main
from vidaction.train import distribute as dd

# 12 training clips, global batch 4: every step splits evenly over 2 replicas, so the two
# runs see exactly the same global batches (see test_epoch_one_matches_one_replica).
SET = {**TINY, "clips_per_class": 8}
FLAGS = ["--model", "r2plus1d", "--epochs", "3", "--batch-size", "4", "--frames", "4",
         "--frame-step", "3", "--size", "32", "--patience", "5", "--no-progress"]
TOL = 1e-5  # max |w_2workers - w_1replica| after epoch 1; measured 1.1e-6 (kernels)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from vidaction.data.builtin import render_dataset

    return render_dataset(tmp_path_factory.mktemp("dist") / "set", progress=False, **SET)


def _env(tmp: Path) -> dict:
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp)}


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _worker_index(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for kv in env:
        if kv.startswith(b"TF_CONFIG="):
            return json.loads(kv[10:])["task"]["index"]
    return None


@pytest.fixture(scope="module")
def killed_then_resumed(dataset, tmp_path_factory):
    """--local-workers 2 for 3 epochs; worker 1 SIGKILLed once epoch 1 is committed;
    then the same command with --resume. Returns what each step left."""
    root = tmp_path_factory.mktemp("killrun")
    out, tmp = root / "run", root / "tmp"
    cmd = [sys.executable, "-m", "vidaction.cli", "train", "--data", str(dataset), "--out",
           str(out), *FLAGS, "--local-workers", "2", "--cluster-timeout", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(tmp), start_new_session=True)
    committed = out / "checkpoints" / "last" / "checkpoint"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not committed.exists():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
    victim = [p for p in _children(proc.pid) if _worker_index(p) == 1]
    assert victim, "worker 1 not found"
    t0 = time.time()
    os.kill(victim[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    stop_s = time.time() - t0
    ckpt1 = out / "checkpoints" / "last" / "ckpt-1"
    weights1 = _model_weights(ckpt1)
    killed = dict(rc=proc.returncode, out=stdout.decode(), err=stderr.decode(),
                  stop_s=stop_s, weights1=weights1, iterations1=_iterations(ckpt1),
                  # the epoch's checkpoint is its commit point: the kill may come before
                  # history.json lists it
                  epochs_done=len(json.loads((out / "history.json").read_text())["epochs"])
                  if (out / "history.json").exists() else 0,
                  model=(out / "model").exists())
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=400,
                       env=_env(tmp))
    return dict(out=out, tmp=tmp, killed=killed, resumed=r)


def _model_weights(prefix: Path) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith("model/") and k.endswith("VARIABLE_VALUE")
            and "OPTIMIZER_SLOT" not in k}


# --- the cluster: a killed worker stops the job, --resume finishes it --------------------


def test_killed_worker_stops_the_job_in_one_line(killed_then_resumed):
    k = killed_then_resumed["killed"]
    assert k["rc"] == 1, k["err"][-2000:]
    errors = [ln for ln in k["err"].splitlines() if ln.startswith("vidaction: error:")]
    assert len(errors) == 1 and "worker 1 was killed (SIGKILL)" in errors[0], k["err"]
    assert "--resume" in errors[0]
    assert "Traceback" not in k["err"]
    assert k["epochs_done"] < 3 and not k["model"]
    assert k["stop_s"] < 60  # the chief is stopped too, not left waiting on a collective


def test_resume_finishes_with_every_epoch_once(killed_then_resumed):
    r, out = killed_then_resumed["resumed"], killed_then_resumed["out"]
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "resuming" in r.stdout and "strategy: multi-worker, 2 replica(s)" in r.stdout
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    sessions = history["sessions"]
    assert len(sessions) == 2 and sessions[0]["from_epoch"] == 1
    done = killed_then_resumed["killed"]["epochs_done"]
    assert sessions[1]["from_epoch"] - 1 in (done, done + 1) and sessions[1]["from_epoch"] > 1
    assert all(s["strategy"] == "multi-worker" and s["num_replicas"] == 2 for s in sessions)
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert [int(x.split(",")[0]) for x in rows[1:]] == [1, 2, 3]


def test_chief_run_folder_is_complete_and_loads(killed_then_resumed):
    import vidaction

    out = killed_then_resumed["out"]
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "classes.txt", "history.json", "log.csv", "checkpoints",
            "model", "tensorboard"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["distribute"] == {"strategy": "multi-worker", "num_replicas": 2,
                                    "num_workers": 2, "global_batch_size": 4,
                                    "per_replica_batch_size": 2}
    run = vidaction.load_run(out)
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    logits = run.predict_logits(clips)
    assert logits.shape == (2, 3) and np.isfinite(logits).all()
    # the other worker wrote only into a temporary folder, and removed it (the killed
    # worker's one too, on relaunch); the launcher's worker logs went with a success
    kept = killed_then_resumed["killed"]["err"].split("(worker logs: ")[1].split(")")[0]
    assert (Path(kept) / "worker1.err").exists()  # the failed launch keeps and names them
    left = [p.name for p in killed_then_resumed["tmp"].iterdir() if str(p) != kept]
    assert [n for n in left if n.startswith("vidaction-worker")] == [], left


def test_epoch_one_matches_one_replica(killed_then_resumed, dataset, tmp_path):
    """The same global batches in the same order, in one process with one replica (no
    all-reduce): the 2-worker weights after epoch 1 agree within TOL. The exception is a
    convolution bias that a batch norm follows (and that norm's moving mean, which tracks
    it): its gradient is zero in exact arithmetic, so Adam, which divides by the gradient's
    size, turns rounding noise into steps of up to --lr; those agree within 3.5 lr."""
    from conftest import tiny_config
    from vidaction.train import train

    cfg = tiny_config(dataset, tmp_path / "one", epochs=1, batch_size=4)
    train(cfg, progress=False, strategy="mirrored")
    ref = _model_weights(tmp_path / "one" / "checkpoints" / "last" / "ckpt-1")
    got = killed_then_resumed["killed"]["weights1"]
    assert set(ref) == set(got) and ref
    noise = _zero_gradient_keys()
    assert noise and noise <= set(ref)
    diff = {k: float(np.max(np.abs(ref[k] - got[k]))) for k in ref}
    rest = max(v for k, v in diff.items() if k not in noise)
    print(f"max |w_2workers - w_1replica| after epoch 1: {rest:.3g} "
          f"(pre-batch-norm biases: {max(diff[k] for k in noise):.3g})")
    assert rest < TOL, sorted((v, k) for k, v in diff.items() if k not in noise)[-3:]
    assert all(diff[k] < 3.5 * 1e-4 for k in noise), {k: diff[k] for k in noise}
    # both trained the same 3 steps (12 clips / 4): the match is not one of initial weights
    assert _iterations(tmp_path / "one" / "checkpoints" / "last" / "ckpt-1") == 3
    assert killed_then_resumed["killed"]["iterations1"] == 3


def _zero_gradient_keys() -> set[str]:
    """Checkpoint keys of r2plus1d's biases that feed a batch norm, and of that norm's
    moving mean."""
    from vidaction.models import create_model

    model = create_model("r2plus1d", 3, frames=4, size=32)
    weighted = [layer for layer in model.layers if layer.weights]
    keys = set()
    for i, layer in enumerate(weighted):
        if not getattr(layer, "use_bias", False):
            continue
        for node in layer._outbound_nodes:
            after = node.outbound_layer
            if type(after).__name__ == "BatchNormalization":
                keys.add(f"model/layer_with_weights-{i}/bias/.ATTRIBUTES/VARIABLE_VALUE")
                keys.add(f"model/layer_with_weights-{weighted.index(after)}/moving_mean/"
                         ".ATTRIBUTES/VARIABLE_VALUE")
    return keys


def _iterations(prefix: Path) -> int:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    key = next(k for k in reader.get_variable_to_shape_map()
               if k.startswith("optimizer/") and "iter" in k.split("/")[1])
    return int(reader.get_tensor(key))


# --- bad clusters: one line, non-zero, bounded time --------------------------------------


def _one_line(capsys, rc, *words):
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("vidaction: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("tf_config, words", [
    ("{not json", ["TF_CONFIG is not JSON"]),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', ['no "task"']),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
     ["task index 3"]),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     ["not host:port"]),
    ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', ['"ps"']),
])
def test_bad_tf_config_is_one_line(dataset, tmp_path, monkeypatch, capsys, tf_config, words):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    t0 = time.time()
    rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), *FLAGS,
               "--strategy", "multi-worker"])
    _one_line(capsys, rc, *words)
    assert time.time() - t0 < 30 and not (tmp_path / "r").exists()


def test_flags_that_exclude_each_other(dataset, tmp_path, capsys):
    rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), *FLAGS,
               "--local-workers", "2", "--workers", "a:1,b:2", "--task-index", "0"])
    _one_line(capsys, rc, "--local-workers")
    rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), *FLAGS,
               "--workers", "127.0.0.1:1,127.0.0.1:2"])
    _one_line(capsys, rc, "--task-index")
    rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), *FLAGS,
               "--workers", "127.0.0.1:1,127.0.0.1:2", "--task-index", "2"])
    _one_line(capsys, rc, "--task-index 2")


def test_busy_port_is_one_line(dataset, tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        other = dd.free_ports(1)[0]
        monkeypatch.setenv("TF_CONFIG", dd.tf_config_for(
            f"127.0.0.1:{port},127.0.0.1:{other}", 0))
        t0 = time.time()
        rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), *FLAGS])
    _one_line(capsys, rc, f"port {port}", "in use")
    assert time.time() - t0 < 60
    assert not (tmp_path / "r").exists()  # the chief's new run folder is taken back


def test_unreachable_peer_times_out_in_one_line(dataset, tmp_path):
    ports = dd.free_ports(2)
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    cmd = [sys.executable, "-m", "vidaction.cli", "train", "--data", str(dataset), "--out",
           str(tmp_path / "r"), *FLAGS, "--workers", workers, "--task-index", "0",
           "--cluster-timeout", "3"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    took = time.time() - t0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-2000:]
    assert "did not start within 3 s" in lines[0] and f"127.0.0.1:{ports[1]}" in lines[0]
    assert took < 90
    # at most a run that never finished an epoch, which the next start replaces unasked
    assert not (tmp_path / "r" / "checkpoints").exists()


# --- the pieces: sharding, TF_CONFIG -----------------------------------------------------


@pytest.mark.parametrize("n, batch, replicas", [(12, 4, 2), (9, 4, 2), (10, 3, 2),
                                                (7, 8, 4), (5, 2, 2)])
def test_replica_shares_of_a_step_are_its_global_batch(n, batch, replicas):
    order = dd.epoch_order(n, 0, 1)
    pieces = dd.replica_pieces(order, batch, replicas)
    for s, step in enumerate(pieces):
        got = np.sort(np.concatenate(step))
        np.testing.assert_array_equal(got, np.sort(order[s * batch:(s + 1) * batch]))
        assert all(len(p) for p in step)
    # only a last batch smaller than the replica count is left out
    assert n - sum(len(np.concatenate(st)) for st in pieces) in range(replicas)
    # each worker feeds its own replicas, the same number of steps everywhere
    for per_worker in (1, replicas):
        workers = replicas // per_worker
        feeds = [dd.worker_items(pieces, w, per_worker) for w in range(workers)]
        assert {len(sizes) for _, sizes in feeds} == {len(pieces) * per_worker}
        every = np.sort(np.concatenate([items for items, _ in feeds]))
        np.testing.assert_array_equal(every, np.sort(np.concatenate(
            [np.concatenate(st) for st in pieces])))


def test_epoch_order_is_the_same_everywhere_and_changes_per_epoch():
    a, b = dd.epoch_order(50, 7, 2), dd.epoch_order(50, 7, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, dd.epoch_order(50, 7, 3))


def test_tf_config_round_trip():
    text = dd.tf_config_for("10.0.0.1:2222, 10.0.0.2:2222", 1)
    c = dd.read_tf_config(text)
    assert c.addresses == ("10.0.0.1:2222", "10.0.0.2:2222") and c.id == 1
    assert not c.is_chief and c.address == "10.0.0.2:2222"
    chief = dd.read_tf_config(json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]},
                                          "task": {"type": "chief", "index": 0}}))
    assert chief.is_chief and chief.size == 2
    w0 = dd.read_tf_config(json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]},
                                       "task": {"type": "worker", "index": 0}}))
    assert not w0.is_chief and w0.id == 1


def test_auto_is_none_on_one_cpu_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert dd.plan_strategy("auto").name == "none"
    monkeypatch.setenv("TF_CONFIG", dd.tf_config_for("127.0.0.1:1,127.0.0.1:2", 0))
    assert dd.plan_strategy("auto").name == "multi-worker"
