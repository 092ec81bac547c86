"""`train --resume`: the run is the truth (its classes, its settings), and its checkpoints
survive damage and a kill between the saves of an epoch."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from vidaction.cli import main

FLAGS = ["--model", "r2plus1d", "--batch-size", "3", "--frames", "4", "--frame-step", "3",
         "--size", "32", "--patience", "5", "--no-progress"]


class Killed(BaseException):
    """Stands in for SIGKILL at a chosen point (BaseException: nothing catches it)."""


_cfg = tiny_config


@pytest.fixture(scope="module")
def done(data, tmp_path_factory):
    """A finished 2-epoch run; tests work on copies."""
    from vidaction.train import train

    return train(_cfg(data, tmp_path_factory.mktemp("done") / "run"), progress=False)


@pytest.fixture(scope="module")
def killed(data, tmp_path_factory):
    """A 2-epoch run killed right after epoch 1 was committed."""
    from vidaction.train import fit

    real = fit.Keeper.on_epoch_end

    def then_die(self, epoch, logs=None):
        real(self, epoch, logs)
        raise Killed

    out = tmp_path_factory.mktemp("killed") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit.Keeper, "on_epoch_end", then_die)
        with pytest.raises(Killed):
            fit.train(_cfg(data, out), progress=False)
    assert not (out / "model").exists()
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _snapshot(folder: Path) -> dict:
    """Every file's bytes, but the writer's lock (it names the last process that held it)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "lock" not in p.name}


def _resume(run, *extra, capsys):
    rc = main(["train", "--out", str(run), "--resume", *extra])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _epochs(run) -> list[int]:
    return [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]]


def _one_line_error(rc, err, *words):
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidaction: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def _logits_of(model_ckpt: str, clips):
    """Logits of a fresh r2plus1d holding the model weights of a checkpoint."""
    import tensorflow as tf

    from vidaction.models import create_model

    ref = create_model("r2plus1d", 3, frames=4, size=32)
    tf.train.Checkpoint(model=ref).restore(model_ckpt).expect_partial()
    return ref(clips, training=False).numpy()


CLIPS = np.random.default_rng(0).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)


def _final_model_is_the_history_best(run):
    """The saved model holds the epoch history.json marks best (read from last/, where
    every epoch's full checkpoint goes, when it is still kept there)."""
    from vidaction.train import load_run

    epochs = json.loads((run / "history.json").read_text())["epochs"]
    best = min(epochs, key=lambda e: e["val_loss"])["epoch"]
    assert [e["epoch"] for e in epochs if e["best"]][-1] == best
    got = load_run(run).predict_logits(CLIPS)
    np.testing.assert_allclose(got, _logits_of(str(run / "checkpoints" / "best" /
                                                   f"ckpt-{best}"), CLIPS), atol=1e-5)
    last = run / "checkpoints" / "last" / f"ckpt-{best}"
    if last.with_suffix(".index").exists():
        np.testing.assert_allclose(got, _logits_of(str(last), CLIPS), atol=1e-5)
    return best


# --- item 4: a resume continues the run as configured ---------------------------------


def test_plain_resume_trains_to_the_runs_epochs_not_the_cli_default(killed, tmp_path,
                                                                    capsys):
    run = _copy(killed, tmp_path / "run")
    rc, out, err = _resume(run, "--no-progress", capsys=capsys)
    assert rc == 0, err
    assert f"resuming {run} after epoch 1" in out
    assert _epochs(run) == [1, 2]  # not 10, the CLI's default
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2
    assert (run / "model").is_dir()


def test_resume_of_a_finished_run_trains_nothing_more(done, tmp_path, capsys):
    run = _copy(done, tmp_path / "run")
    config = (run / "config.json").read_bytes()
    rc, out, err = _resume(run, capsys=capsys)
    assert rc == 0, err
    assert _epochs(run) == [1, 2]
    assert (run / "config.json").read_bytes() == config
    _final_model_is_the_history_best(run)


def test_flags_that_may_change_are_applied_and_recorded(done, tmp_path, capsys):
    run = _copy(done, tmp_path / "run")
    rc, out, err = _resume(run, "--epochs", "3", "--patience", "7", "--batch-size", "2",
                           "--frames", "4", "--model", "r2plus1d", "--no-progress",
                           capsys=capsys)  # the last two agree with the run: fine
    assert rc == 0, err
    assert _epochs(run) == [1, 2, 3]
    saved = json.loads((run / "config.json").read_text())["train"]
    assert (saved["epochs"], saved["patience"], saved["batch_size"]) == (3, 7, 2)
    assert saved["out"] == str(run)
    _final_model_is_the_history_best(run)


@pytest.mark.parametrize("flags, words", [
    (["--model", "rgb-diff"], ["--model rgb-diff", "model r2plus1d"]),
    (["--frames", "8", "--size", "48"], ["--frames 8", "frames 4", "--size 48", "size 32"]),
    (["--lr", "0.5"], ["--lr 0.5", "lr 0.0001"]),
    (["--augment"], ["--augment", "augment False"]),
    (["--train-backbone"], ["--train-backbone"]),
    (["--epochs", "1"], ["--epochs 1", "already trained 2 epochs"]),
])
def test_flags_that_contradict_the_run_are_one_line_and_change_nothing(
        done, tmp_path, capsys, flags, words):
    run = _copy(done, tmp_path / "run")
    before = _snapshot(run)
    rc, out, err = _resume(run, *flags, capsys=capsys)
    _one_line_error(rc, err, str(run), *words)
    assert _snapshot(run) == before


def test_python_api_resume_keeps_settings_left_at_their_defaults(killed, tmp_path):
    from vidaction.train import TrainConfig, train

    run = _copy(killed, tmp_path / "run")
    train(TrainConfig(data="", out=str(run)), resume=True, progress=False)  # epochs=10 default
    assert _epochs(run) == [1, 2]


# --- item 3: the run's classes, not today's dataset ------------------------------------


def _data_copy(data, tmp_path, change):
    d = _copy(data, tmp_path / "data")
    classes = (d / "classes.txt").read_text().split()
    if change == "reordered":
        classes = classes[::-1]
    elif change == "added":
        src = next((d / "train" / "clap").glob("*.mp4"))
        (d / "train" / "wave").mkdir()
        shutil.copy(src, d / "train" / "wave" / src.name)
        classes = [*classes, "wave"]
    elif change == "removed":
        for split in ("train", "val", "test"):
            shutil.rmtree(d / split / "clap", ignore_errors=True)
        classes = classes[1:]
    elif change == "renamed":
        for split in ("train", "val", "test"):
            if (d / split / "clap").exists():
                (d / split / "clap").rename(d / split / "applause")
        classes = ["applause", *classes[1:]]
    (d / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return d


def test_a_reordered_dataset_is_mapped_by_name(data, killed, tmp_path, capsys, monkeypatch):
    from vidaction.train import fit

    d = _data_copy(data, tmp_path, "reordered")
    run = _copy(killed, tmp_path / "run")
    run_classes = (run / "classes.txt").read_text().split()
    assert (d / "classes.txt").read_text().split() != run_classes
    seen = []
    real = fit._splits

    def spy(ds, cfg):
        train_clips, val_clips, note = real(ds, cfg)
        seen.extend(train_clips + val_clips)
        return train_clips, val_clips, note

    monkeypatch.setattr(fit, "_splits", spy)
    classes_txt = (run / "classes.txt").read_bytes()
    rc, out, err = _resume(run, "--data", str(d), "--no-progress", capsys=capsys)
    assert rc == 0, err
    assert "mapped by name" in out
    assert seen and all(run_classes[c.label] == c.class_name for c in seen)
    assert {c.class_name for c in seen} == set(run_classes)
    assert (run / "classes.txt").read_bytes() == classes_txt
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == run_classes and config["train"]["data"] == str(d)
    assert _epochs(run) == [1, 2]


@pytest.mark.parametrize("change, words", [
    ("added", ["not in the run: wave"]),
    ("removed", ["missing: clap"]),
    ("renamed", ["not in the run: applause", "missing: clap"]),
])
def test_a_dataset_with_other_classes_is_refused_before_anything_is_written(
        data, killed, tmp_path, capsys, change, words):
    d = _data_copy(data, tmp_path, change)
    run = _copy(killed, tmp_path / "run")
    before = _snapshot(run)
    rc, out, err = _resume(run, "--data", str(d), capsys=capsys)
    _one_line_error(rc, err, str(d), "config.json", *words)
    assert _snapshot(run) == before


def test_a_hand_edited_run_classes_txt_is_one_line(killed, tmp_path, capsys):
    run = _copy(killed, tmp_path / "run")
    classes = (run / "classes.txt").read_text().split()
    (run / "classes.txt").write_text("\n".join(classes[::-1]) + "\n")
    before = _snapshot(run)
    rc, out, err = _resume(run, capsys=capsys)
    _one_line_error(rc, err, str(run / "classes.txt"), "config.json", ", ".join(classes))
    assert _snapshot(run) == before


# --- item 6: checkpoints that survive damage -------------------------------------------


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def test_a_truncated_last_checkpoint_falls_back_one_epoch(done, tmp_path, capsys):
    run = _copy(done, tmp_path / "run")
    last = run / "checkpoints" / "last"
    assert (last / "ckpt-1.index").exists()  # the one to fall back to is kept
    _truncate(last / "ckpt-2.data-00000-of-00001")
    rc, out, err = _resume(run, "--epochs", "3", "--no-progress", capsys=capsys)
    assert rc == 0, err
    warnings = [ln for ln in err.splitlines() if "ckpt-2" in ln]
    assert len(warnings) == 1 and "damaged" in warnings[0] and "ckpt-1" in warnings[0]
    assert "Traceback" not in err
    assert f"resuming {run} after epoch 1" in out
    assert _epochs(run) == [1, 2, 3]
    _final_model_is_the_history_best(run)


def test_a_garbled_state_file_neither_restarts_nor_deletes(done, tmp_path, capsys):
    run = _copy(done, tmp_path / "run")
    state = run / "checkpoints" / "last" / "checkpoint"
    state.write_text("model_checkpoint_path: \x00\x01 garbage {{{\n")
    rc, out, err = _resume(run, "--epochs", "3", "--no-progress", capsys=capsys)
    assert rc == 0, err
    assert len([ln for ln in err.splitlines() if "garbled" in ln]) == 1
    assert f"resuming {run} after epoch 2" in out
    assert _epochs(run) == [1, 2, 3]
    assert (run / "checkpoints" / "last" / "ckpt-2.index").exists()  # kept: one back
    _final_model_is_the_history_best(run)


def test_no_intact_checkpoint_is_one_line_and_changes_nothing(done, tmp_path, capsys):
    run = _copy(done, tmp_path / "run")
    for n in (1, 2):
        _truncate(run / "checkpoints" / "last" / f"ckpt-{n}.data-00000-of-00001")
    before = _snapshot(run)
    rc, out, err = _resume(run, "--epochs", "3", capsys=capsys)
    _one_line_error(rc, err, "no intact checkpoint", "ckpt-1", "ckpt-2")
    assert _snapshot(run) == before


def test_a_kill_between_the_last_and_best_saves_is_reconciled(data, tmp_path, capsys):
    import tensorflow as tf

    from vidaction.train import train

    real = tf.train.CheckpointManager.save

    def save(self, *a, **k):
        if Path(self.directory).name == "best":
            raise Killed  # after last/ committed epoch 1 (which always improves)
        return real(self, *a, **k)

    run = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tf.train.CheckpointManager, "save", save)
        with pytest.raises(Killed):
            train(_cfg(data, run), progress=False)
    assert not (run / "checkpoints" / "best" / "ckpt-1.index").exists()
    rc, out, err = _resume(run, "--no-progress", capsys=capsys)
    assert rc == 0, err
    assert "best epoch 1 was missing" in out
    assert _epochs(run) == [1, 2]
    assert (run / "checkpoints" / "best" / "ckpt-1.index").exists()
    best = _final_model_is_the_history_best(run)
    assert f"best epoch {best}" in out


def test_resumes_keep_rotating_two_checkpoints_without_warnings(data, done, tmp_path,
                                                               capsys, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)  # a relative --out and --data, as people type them
    _copy(done, tmp_path / "run")
    (tmp_path / "sub").mkdir()
    _copy(data, tmp_path / "d")  # the dataset moved
    for where, extra in ((".", ["--data", "d"]),
                         ("sub", ["--epochs", "3"]), (".", ["--epochs", "4"])):
        monkeypatch.chdir(tmp_path / where)
        rc, out, err = _resume(Path(os.path.relpath(tmp_path / "run")), *extra,
                               "--no-progress", capsys=capsys)
        assert rc == 0, err
        assert "warning" not in err, err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["data"] == str(tmp_path / "d")  # absolute: found again from any folder
    last = sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "last").glob("*.index"))
    assert last == ["ckpt-3.index", "ckpt-4.index"]
    assert _epochs(tmp_path / "run") == [1, 2, 3, 4]
