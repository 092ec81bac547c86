"""Refusals a new user meets first: answered from the flags and folders alone, before
TensorFlow is imported (8-10 s), as one line; one overwrite rule for every output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_video


def _fake_run(folder: Path, name: str = "rgb-diff") -> Path:
    """What the checks look at: config.json (a vidaction run's) and a model/ folder."""
    (folder / "model").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "vidaction": "0.1.0", "train": {"data": str(folder / "nodata")},
        "model": {"name": name, "frames": 4, "size": 32, "num_classes": 2},
        "sampling": {"n_frames": 4, "frame_step": 1, "size": 32}, "classes": ["a", "b"]}))
    (folder / "classes.txt").write_text("a\nb\n")
    return folder


def _in_fresh_python(cases: list[list[str]], cwd: Path) -> list[dict]:
    """Run main() on each argv in one new interpreter; each: exit code, stderr, and
    whether TensorFlow had been imported by then."""
    code = """
import contextlib, io, json, sys
from vidaction.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    out.append({"rc": rc, "err": err.getvalue(), "tf": "tensorflow" in sys.modules})
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_refusals_come_before_tensorflow_is_imported(tmp_path):
    data = tmp_path / "data"
    make_video(data / "train" / "a" / "a1.mp4", 8)
    make_video(data / "train" / "b" / "b1.mp4", 8)
    flat = tmp_path / "flat"
    make_video(flat / "a1.mp4", 8)
    make_video(flat / "b1.mp4", 8)
    run = _fake_run(tmp_path / "demo" / "run")
    stream_run = _fake_run(tmp_path / "srun", "movinet-a0-stream")
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    taken_tflite = tmp_path / "taken.tflite"
    taken_tflite.write_bytes(b"x")
    video = make_video(tmp_path / "v.mp4", 8)
    cases = [
        (["train", "--out", "r"], "--data is required"),
        (["train", "--data", str(data), "--out", "r", "--model", "nosuch"], "nosuch"),
        (["train", "--data", str(tmp_path / "nodata"), "--out", "r"], "nodata: no such folder"),
        (["train", "--data", str(data), "--out", str(run)], "already holds a run"),
        (["train", "--data", str(data), "--out", str(data / "run")], "inside the --data"),
        (["train", "--resume", "--out", str(tmp_path / "none")], "nothing to resume"),
        (["evaluate", str(tmp_path / "none")], "no such run folder"),
        (["evaluate", str(tmp_path / "demo")], f"holds a run at {run}"),
        (["evaluate", str(data)], "is a dataset folder, not a run"),
        (["predict", str(tmp_path / "demo"), str(video)], f"holds a run at {run}"),
        (["predict", str(run), str(tmp_path / "gone.mp4")], "gone.mp4: missing"),
        (["predict", str(run), str(video), "--overlay", str(taken)], "already exists"),
        (["export", str(run), "--format", "tflite", "--out", str(taken_tflite)],
         "already exists"),
        (["stream", str(tmp_path / "demo"), str(video)], f"holds a run at {run}"),
        (["stream", str(stream_run), str(video), "--overlay", str(taken)], "already exists"),
        (["data", "check", str(flat)], "no class folders"),
    ]
    results = _in_fresh_python([argv for argv, _ in cases], tmp_path)
    for (argv, want), got in zip(cases, results, strict=True):
        lines = got["err"].strip().splitlines()
        assert got["rc"] == 1 and len(lines) == 1 and want in lines[0], (argv, got)
        assert not got["tf"], f"{' '.join(argv)} imported TensorFlow before refusing"
    assert taken.read_bytes() == b"x"


def test_one_overwrite_rule_in_help():
    from vidaction.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for verb in ("train", "evaluate", "export", "predict", "stream"):
        flags = {s for a in sub[verb]._actions for s in a.option_strings}
        assert "--force" in flags, verb


@pytest.mark.parametrize("what", ["overlay", "timeline"])
def test_predict_refuses_an_existing_output_before_the_model_loads(tmp_path, what, capsys,
                                                                   monkeypatch):
    import vidaction.models.predictor as predictor
    from vidaction.cli import main

    def never(*a, **k):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(predictor, "load_predictor", never)
    video = make_video(tmp_path / "v.mp4", 8)
    if what == "overlay":
        out = tmp_path / "o.mp4"
        argv = ["--overlay", str(out)]
    else:
        out = tmp_path / "t.png"  # one of PREFIX.csv/.json/.png is enough
        argv = ["--timeline", "--out", str(tmp_path / "t")]
    out.write_bytes(b"mine")
    rc = main(["predict", str(_fake_run(tmp_path / "run")), str(video), *argv])
    err = capsys.readouterr().err
    assert rc == 1 and f"{out} already exists; --force replaces it" in err
    assert out.read_bytes() == b"mine"
