"""Run folders: --force never destroys before the start is known to be right, and only ever
a vidaction run; one writer per run (an OS lock); model limits before anything is written."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tiny_config
from vidaction.errors import UserError, VidactionError

FAST = ["--model", "rgb-diff", "--batch-size", "3", "--frames", "4", "--frame-step", "3",
        "--size", "32", "--no-progress"]


def _cfg(data, out, **kw):
    return tiny_config(data, out, **{"model": "rgb-diff", "epochs": 1, **kw})


@pytest.fixture(scope="module")
def base_run(data, tmp_path_factory):
    from vidaction.train import train

    return train(_cfg(data, tmp_path_factory.mktemp("base") / "run"), progress=False)


@pytest.fixture
def run(base_run, tmp_path):
    """A finished one-epoch run of its own for each test."""
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".vidaction.lock"}


def _cli(capsys, *argv) -> tuple[int, str]:
    from vidaction.cli import main

    try:
        rc = main(["train", *argv])
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    err = capsys.readouterr().err.strip()
    return rc, err


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ 1. --force is safe


@pytest.mark.parametrize("flags, reason", [
    (["--data", "{data}x"], "no such folder"),
    (["--model", "no-such-net"], "unknown model 'no-such-net'"),
    (["--size", "1"], "--size 1: rgb-diff takes frames of 16x16"),
    (["--frames", "1"], "--frames 1: rgb-diff takes 2 to"),
    (["--lr", "-1"], "must be positive"),
    (["--pretrained", "auto"], "trains from scratch"),
    (["--unfreeze-top", "1"], "--unfreeze-top fine-tunes MoViNet"),
])
def test_force_checks_everything_before_the_old_run_is_touched(data, run, capsys, flags,
                                                                  reason):
    before = _snapshot(run)
    flags = [f.format(data=data) for f in flags]
    rc, err = _cli(capsys, "--data", str(data), "--out", str(run), *FAST, *flags, "--force")
    assert rc in (1, 2) and reason in err, err
    assert "Traceback" not in err
    assert _snapshot(run) == before
    assert _siblings(run) == []


def test_force_refuses_every_folder_that_is_not_a_run(data, tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.txt").write_text("four years")
    rc, err = _cli(capsys, "--data", str(data), "--out", str(thesis), *FAST, "--force")
    assert rc == 1 and "is not a vidaction run (it holds thesis.txt)" in err
    assert "\n" not in err
    assert (thesis / "thesis.txt").read_text() == "four years"
    assert sorted(p.name for p in thesis.iterdir()) == ["thesis.txt"]

    # a config.json someone else wrote is no marker
    (thesis / "config.json").write_text('{"lr": 0.1}')
    rc, err = _cli(capsys, "--data", str(data), "--out", str(thesis), *FAST, "--force")
    assert rc == 1 and "config.json is not one vidaction train wrote" in err

    # a file where the folder should be
    (tmp_path / "file").write_text("x")
    rc, err = _cli(capsys, "--data", str(data), "--out", str(tmp_path / "file"), *FAST,
                   "--force")
    assert rc == 1 and "exists and is not a folder" in err


def test_force_refuses_a_run_holding_the_users_files(data, run, capsys):
    (run / "notes.txt").write_text("lr 1e-3 was better")
    before = _snapshot(run)
    rc, err = _cli(capsys, "--data", str(data), "--out", str(run), *FAST, "--force")
    assert rc == 1 and "holds notes.txt, which are not part of a run" in err
    assert _snapshot(run) == before


def test_out_and_data_are_kept_apart(data, tmp_path, capsys):
    before = _snapshot(data)
    for out, reason in ((data, "is the --data folder"),
                        (data / "train" / "run", "is inside the --data folder"),
                        (data.parent, "is inside --out")):
        rc, err = _cli(capsys, "--data", str(data), "--out", str(out), *FAST, "--force")
        assert rc == 1 and reason in err, err
    link = tmp_path / "link"
    link.symlink_to(data)
    rc, err = _cli(capsys, "--data", str(link), "--out", str(data), *FAST, "--force")
    assert rc == 1 and "is the --data folder" in err
    assert _snapshot(data) == before
    assert not (data / "train" / "run").exists()


def test_existing_run_needs_force_and_force_swaps_at_the_end(data, run, capsys, monkeypatch):
    from vidaction.train import fit, train

    before = _snapshot(run)
    with pytest.raises(VidactionError, match="already holds a run; --resume continues it, "
                                             "--force replaces it"):
        train(_cfg(data, run), progress=False)
    assert _snapshot(run) == before

    # While the new run trains, the old one is untouched and the new one lives beside it.
    seen = []
    real = fit.Keeper.on_epoch_end

    def spy(self, epoch, logs=None):
        real(self, epoch, logs)
        seen.append((self.out.name, _snapshot(run) == before))

    monkeypatch.setattr(fit.Keeper, "on_epoch_end", spy)
    out = train(_cfg(data, run, epochs=2), force=True, progress=False)
    assert out == run
    assert seen == [(f".run.tmp-{os.getpid()}", True)] * 2
    assert "the new run is trained in" in capsys.readouterr().out
    assert [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]] \
        == [1, 2]
    assert _siblings(run) == []
    monkeypatch.undo()
    # the checkpoints moved with the folder: --resume continues the swapped-in run
    train(_cfg(data, run, epochs=3), resume=True, progress=False)
    assert "resuming" in capsys.readouterr().out
    assert len(json.loads((run / "history.json").read_text())["epochs"]) == 3


def test_a_failed_force_run_leaves_the_old_run_as_it_was(data, run, monkeypatch):
    import vidaction.models as models
    from vidaction.train import train

    before = _snapshot(run)

    def no_space(*a, **k):
        raise OSError(28, "No space left on device", "model")

    monkeypatch.setattr(models, "save_model", no_space)  # after the epochs, at the end
    with pytest.raises(OSError, match="No space left"):
        train(_cfg(data, run, epochs=2), force=True, progress=False)
    assert _snapshot(run) == before
    assert _siblings(run) == []


# ------------------------------------------------- 12. a failed start leaves nothing behind


def test_model_limits_are_flag_errors():
    from vidaction.models import create_model
    from vidaction.models.factory import check_input

    for name, frames, size, reason in (
            ("rgb-diff", 1, 48, "--frames 1: rgb-diff takes 2 to"),
            ("rgb-diff", 8, 15, "--size 15: rgb-diff takes frames of 16x16"),
            ("r2plus1d", 4, 8, "--size 8: r2plus1d"),
            ("movinet-a0-stream", 4, 16, "--size 16: movinet-a0-stream takes frames of 32x32"),
            ("r2plus1d", 4, 5000, "to 1024x1024 pixels"),
            ("movinet-a0", 10_000, 172, "--frames 10000")):
        with pytest.raises(UserError, match=reason):
            check_input(name, frames, size)
    with pytest.raises(UserError, match="rgb-diff takes frames of 16x16"):
        create_model("rgb-diff", 3, frames=4, size=1)  # no ValueError traceback
    check_input("movinet-a0-stream", 1, 32)  # one frame at a time is how streams run


def test_a_failed_start_writes_nothing_and_a_stub_does_not_block(data, tmp_path, capsys,
                                                                  monkeypatch):
    out = tmp_path / "run"
    rc, err = _cli(capsys, "--data", str(data), "--out", str(out), *FAST, "--size", "1")
    assert rc == 1 and "--size 1" in err and not out.exists()

    # A failure after the folder was made (here: building the model) takes it away again;
    # a folder the user made is left empty.
    import vidaction.models as models
    from vidaction.train import train

    def broken(*a, **k):
        raise UserError("no model today")

    monkeypatch.setattr(models, "create_model", broken)
    with pytest.raises(UserError, match="no model today"):
        train(_cfg(data, out), progress=False)
    assert not out.exists()
    out.mkdir()
    with pytest.raises(UserError, match="no model today"):
        train(_cfg(data, out), progress=False)
    assert list(out.iterdir()) == []
    monkeypatch.undo()

    # A start killed before its first epoch (what older versions also left on an error):
    # config.json and classes.txt only. It holds nothing to keep: no --force needed.
    (out / "config.json").write_text(json.dumps({"train": {"data": str(data)},
                                                 "vidaction": "0.1.0"}))
    (out / "classes.txt").write_text("clap\n")
    (out / "tensorboard").mkdir()
    run = train(_cfg(data, out), progress=False)
    assert "replacing a run that never finished an epoch" in capsys.readouterr().out
    assert (run / "model").is_dir()


def test_an_offline_pretrained_start_leaves_nothing_in_the_way(data, tmp_path, capsys):
    """The new user's path: `--pretrained auto` offline fails in one line and leaves no
    config.json or classes.txt; the retry with --pretrained none is not refused."""
    from conftest import closed_port_url

    out = tmp_path / "run"
    rc, err = _cli(capsys, "--data", str(data), "--out", str(out), "--model",
                   "movinet-a0-stream", "--pretrained", "auto", "--weights-url",
                   closed_port_url("/movinet_a0_stream.tar.gz"), "--frames", "4", "--size",
                   "32", "--epochs", "1", "--no-progress")
    assert rc == 1 and "could not reach" in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    rc, err = _cli(capsys, "--data", str(data), "--out", str(out), *FAST, "--epochs", "1",
                   "--pretrained", "none")
    assert rc == 0, err
    assert (out / "model").is_dir() and "already holds a run" not in err


# ------------------------------------------------------------------- 9. one writer per run


def test_a_second_writer_gets_one_line_naming_the_holder(data, run, capsys):
    from vidaction.evaluate import evaluate_run
    from vidaction.export import export_run
    from vidaction.models.run import RunError
    from vidaction.models.runlock import RunLock
    from vidaction.train import train

    before = _snapshot(run)
    with RunLock(run, "vidaction train"):
        holder = f"is in use by process {os.getpid()} ("
        with pytest.raises(RunError, match=re.escape(f"{run} {holder}")):
            train(_cfg(data, run, epochs=2), resume=True, progress=False)
        with pytest.raises(RunError, match=re.escape(holder)):
            train(_cfg(data, run), force=True, progress=False)
        with pytest.raises(RunError, match=re.escape(holder)):
            evaluate_run(run)
        with pytest.raises(RunError, match=re.escape(holder)):
            export_run(run, "tflite", run / "model.tflite")
        with pytest.raises(RunError, match=re.escape(holder)):  # a second lock, this very process
            RunLock(run, "x").acquire()
        # the installed command line: one line, exit 1
        r = subprocess.run([sys.executable, "-m", "vidaction.cli", "train", "--out", str(run),
                            "--resume", "--no-progress"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 1
        assert r.stderr.strip().count("\n") == 0 and holder in r.stderr, r.stderr
        # writing elsewhere only reads the run: not refused
        export_run(run, "tflite", run.parent / "m.tflite")
    assert _snapshot(run) == before
    # released: the same writers go ahead
    evaluate_run(run)
    assert (run / "eval" / "test" / "metrics.json").is_file()


def test_outputs_that_would_take_the_runs_place_are_refused(run):
    from vidaction.evaluate import evaluate_run
    from vidaction.export import export_run

    before = _snapshot(run)
    with pytest.raises(UserError, match="would take the place of the run"):
        export_run(run, "savedmodel", run, force=True)
    with pytest.raises(UserError, match="would take the place of the run"):
        export_run(run, "savedmodel", run.parent, force=True)
    with pytest.raises(UserError, match="would take the place of the run"):
        evaluate_run(run, out=run, force=True)
    assert _snapshot(run) == before


def test_the_lock_goes_with_a_killed_holder_and_a_killed_force_keeps_the_old_run(data, run):
    before = _snapshot(run)
    cmd = [sys.executable, "-m", "vidaction.cli", "train", "--data", str(data), "--out",
           str(run), *FAST, "--epochs", "500", "--patience", "500", "--force"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    tmp = run.with_name(f".run.tmp-{proc.pid}")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None \
            and not (tmp / "checkpoints" / "last" / "checkpoint").exists():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    r = subprocess.run([sys.executable, "-m", "vidaction.cli", "train", "--out", str(run),
                        "--resume", "--no-progress"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and f"in use by process {proc.pid} (vidaction train" in r.stderr
    assert "--force" in r.stderr or "started" in r.stderr
    assert _snapshot(run) == before  # still the old run, mid-way through the new one

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _snapshot(run) == before and tmp.is_dir()
    from vidaction.models.runlock import RunLock

    RunLock(run, "test").acquire().release()  # the kernel dropped the killed lock
    # the next start cleans what the killed one left
    from vidaction.train import train

    train(_cfg(data, run, epochs=1), force=True, progress=False)
    assert not tmp.exists() and _siblings(run) == []


def test_what_counts_as_a_run(run, tmp_path):
    from vidaction.models.run import RunError
    from vidaction.train.folder import folder_state

    assert folder_state(tmp_path / "nothing") == "absent"
    (tmp_path / "empty").mkdir()
    assert folder_state(tmp_path / "empty") == "empty"
    assert folder_state(run) == "run"
    # the temporaries a killed writer of the run leaves are part of it
    (run / ".history.123.tmp.json").write_text("{")
    (run / ".model.tmp-123").mkdir()
    (run / "model.old-7").mkdir()
    assert folder_state(run) == "run"
    (run / "predictions.csv").write_text("")
    with pytest.raises(RunError, match="holds predictions.csv"):
        folder_state(run)
