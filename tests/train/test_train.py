import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import tiny_config
from vidaction.errors import VidactionError

_cfg = tiny_config


def test_train_writes_a_complete_run_and_load_run_predicts_the_same(data, tmp_path):
    import tensorflow as tf

    from vidaction.models import create_model
    from vidaction.train import load_run, train

    run = train(_cfg(data, tmp_path / "run"), progress=False)
    for name in ("config.json", "classes.txt", "history.json", "log.csv"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").rglob("*tfevents*"))
    hist = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    assert all("val_loss" in e and "val_accuracy" in e for e in hist["epochs"])
    assert len((run / "log.csv").read_text().strip().splitlines()) == 3  # header + 2
    assert hist == json.loads(json.dumps(hist)) and "skipped_files" in hist
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == {"name": "r2plus1d", "frames": 4, "size": 32,
                               "pretrained": "none", "num_classes": 3}
    assert (run / "classes.txt").read_text().split() == ["clap", "sit_down", "stand_up"]

    import vidaction

    loaded = vidaction.load_run(run)
    assert vidaction.load_run is load_run
    assert loaded.classes == ["clap", "sit_down", "stand_up"]
    # the saved model holds the best validation epoch's weights
    ref = create_model("r2plus1d", 3, frames=4, size=32)
    best = tf.train.latest_checkpoint(str(run / "checkpoints" / "best"))
    tf.train.Checkpoint(model=ref).restore(best).expect_partial()
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict_logits(clips), ref(clips, training=False).numpy(),
                               atol=1e-5)


def test_augmented_training_records_its_settings(data, tmp_path):
    from vidaction.train import train

    run = train(_cfg(data, tmp_path / "run", epochs=1, augment=True), progress=False)
    aug = json.loads((run / "config.json").read_text())["augment"]
    assert aug["flip"] is True and aug["time_jitter"] > 0


def test_test_split_never_reaches_fit(data, tmp_path, monkeypatch):
    import vidaction.data.pipeline as pipeline
    from vidaction.train import train

    seen = []
    real = pipeline.make_dataset

    def spy(clips, *a, **k):
        seen.extend(c.split for c in clips)
        return real(clips, *a, **k)

    monkeypatch.setattr(pipeline, "make_dataset", spy)
    train(_cfg(data, tmp_path / "run", epochs=1), progress=False)
    assert set(seen) == {"train", "val"}


def test_existing_run_needs_force(data, tmp_path):
    from vidaction.train import train

    out = tmp_path / "run"
    train(_cfg(data, out, epochs=1), progress=False)
    with pytest.raises(VidactionError, match="--force"):
        train(_cfg(data, out, epochs=1), progress=False)
    train(_cfg(data, out, epochs=2), force=True, progress=False)
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 2
    # a folder that is not a run is never wiped, --force or not (tests/train/test_run_folder)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(VidactionError, match="not a vidaction run"):
        train(_cfg(data, mine, epochs=1), force=True, progress=False)
    assert (mine / "notes.txt").read_text() == "mine"


# A line from TensorFlow's loggers: tsl's C++ format, abseil's, or Python's.
TF_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} "
                         r"|WARNING:(tensorflow|absl):|INFO:tensorflow:)|absl::InitializeLog"
                         r"|PredictCost", re.M)


def test_resume_after_sigkill(data, tmp_path):
    out = tmp_path / "run"
    # --augment: its random crop used to make grappler log "Error in PredictCost()"
    cmd = [sys.executable, "-m", "vidaction.cli", "train", "--data", str(data), "--out",
           str(out), "--model", "r2plus1d", "--epochs", "3", "--batch-size", "3", "--frames",
           "4", "--frame-step", "3", "--size", "32", "--patience", "5", "--augment",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    hist = out / "history.json"
    committed = out / "checkpoints" / "last" / "checkpoint"  # written once epoch 1 is saved
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not committed.exists():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # epoch 1 is committed: in epoch 2, or just before
    proc.wait()
    done = len(json.loads(hist.read_text())["epochs"]) if hist.exists() else 0
    assert done < 3
    assert not (out / "model").exists()

    # the user's environment: no TF_CPP_MIN_LOG_LEVEL of the test session's
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "VIDACTION_TF_LOGS")}
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not TF_LOG_LINE.search(r.stderr), r.stderr[-2000:]  # a quiet terminal
    resumed = re.search(rf"resuming {re.escape(str(out))} after epoch (\d+)", r.stdout)
    # the epoch's checkpoint is its commit point and carries its history: a kill between it
    # and history.json resumes after that epoch, which history.json did not list yet
    assert resumed and 1 <= int(resumed.group(1)) in (done, done + 1), r.stdout
    epochs = json.loads(hist.read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    best = min(epochs, key=lambda e: e["val_loss"])
    assert best["best"]
    assert f"best epoch {best['epoch']}" in r.stdout
    assert (out / "model").is_dir()
    rows = (out / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,accuracy,loss,val_accuracy,val_loss")
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3]


def test_bad_train_flags_are_one_line(data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "vidaction.cli", "train", "--data", str(data),
                        "--out", str(tmp_path / "r"), "--model", "no-such-net"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "unknown model 'no-such-net'" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "vidaction.cli", "train", "--out",
                        str(tmp_path / "nothing"), "--resume"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "nothing to resume" in r.stderr


def test_unfreeze_top_fine_tunes_only_the_last_blocks(data, tmp_path):
    import tf_keras

    from vidaction.models import backbone_of, create_model
    from vidaction.train import load_run, train

    cfg = _cfg(data, tmp_path / "run", model="movinet-a0-stream", pretrained="none",
               frames=2, size=32, epochs=1, unfreeze_top=1)
    run = train(cfg, progress=False)
    tf_keras.utils.set_random_seed(cfg.seed)  # train() builds from the same seed
    before = backbone_of(create_model("movinet-a0-stream", 3, frames=2, size=32))
    after = backbone_of(load_run(run).model)

    bn_names = {"gamma", "beta", "moving_mean", "moving_variance"}

    def weights(backbone, prefix, bn):
        return [w.numpy() for ly in backbone.layers if ly.name.startswith(prefix)
                for w in ly.weights if (w.name.split("/")[-1].split(":")[0] in bn_names) == bn]

    def changed(prefix, bn=False):
        return [not np.array_equal(a, b) for a, b in
                zip(weights(before, prefix, bn), weights(after, prefix, bn), strict=True)]

    assert any(changed("block4")) and any(changed("head"))  # the top block learned
    assert not any(changed("block0")) and not any(changed("stem"))  # the rest did not
    assert weights(before, "block4", True) and not any(changed("block4", bn=True))


def test_mixed_precision_run_keeps_float32_logits_and_reloads_the_same(data, tmp_path):
    import tf_keras

    from vidaction.train import load_run, train

    run = train(_cfg(data, tmp_path / "run", epochs=1, precision="mixed_bfloat16"),
                progress=False)
    assert tf_keras.mixed_precision.global_policy().name == "float32"  # not left behind
    saved = json.loads((run / "model" / "model.json").read_text())
    assert saved["precision"] == "mixed_bfloat16"
    loaded = load_run(run)
    convs = [ly for ly in loaded.model.layers if ly.name.endswith("_spatial")]
    assert convs and all(ly.compute_dtype == "bfloat16" for ly in convs)
    clips = np.random.default_rng(1).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    logits = loaded.model(clips, training=False)
    assert logits.dtype.name == "float32" and np.isfinite(logits.numpy()).all()
    assert all(w.dtype.name == "float32" for w in loaded.model.weights)
    np.testing.assert_array_equal(loaded.predict_logits(clips), load_run(run).predict_logits(clips))


def test_precision_auto_is_float32_without_a_gpu_and_bad_values_are_refused(data, tmp_path):
    from vidaction.models.factory import resolve_precision
    from vidaction.train import train

    assert resolve_precision("auto") == "float32"  # the tests hide GPUs
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(VidactionError, match="--precision"):
        train(_cfg(data, tmp_path / "run", precision="half"), progress=False)


def test_kinetics_weights_sample_at_their_own_rate_unless_told():
    from vidaction.train import TrainConfig
    from vidaction.train.fit import KINETICS_FPS, kinetics_rate

    cfg = TrainConfig(data="d", out="o", model="movinet-a0-stream")
    assert kinetics_rate(cfg, "auto", set()).fps == KINETICS_FPS == 5.0
    assert kinetics_rate(cfg, "none", set()).fps is None  # from scratch: the frame step
    assert kinetics_rate(cfg, "auto", {"frame_step"}).fps is None  # the user chose
    assert kinetics_rate(TrainConfig(data="d", out="o", model="movinet-a0-stream", fps=2.0),
                         "auto", {"fps"}).fps == 2.0
    assert kinetics_rate(TrainConfig(data="d", out="o", model="frame-baseline"),
                         "auto", set()).fps is None  # ImageNet weights: not a rate
