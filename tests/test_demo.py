import json
import subprocess
import sys

from vidaction.demo import _new_run_dir, run_demo


def test_demo_runs_every_stage_end_to_end(tmp_path, capsys):
    tiny = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=6, size=32,
                seconds=0.8)
    quick = dict(frames=4, frame_step=3, size=32, epochs=1, batch_size=4)
    out = tmp_path / "demo"
    assert run_demo(out, progress=False, data=tiny, train=quick) == 0
    text = capsys.readouterr().out
    assert (out / "data" / "classes.txt").read_text().split() == ["clap", "sit_down",
                                                                  "stand_up"]
    assert (out / "preview.png").stat().st_size > 1000
    assert "all files readable" in text
    assert "shorter than one clip" not in text  # checked with the clips the demo trains on
    ev = out / "run" / "eval" / "test"
    for name in ("metrics.json", "predictions.csv", "confusion_matrix.png", "curves.png",
                 "report.html"):
        assert (ev / name).stat().st_size > 0, name
    gifs = sorted((out / "run" / "predictions").glob("*.gif"))
    assert len(gifs) == 3 and all(g.read_bytes()[:6] == b"GIF89a" for g in gifs)
    html = (ev / "report.html").read_text()
    assert "Predicted videos" in html and html.count("true: ") >= 3  # the GIFs, embedded
    assert html.count(": right</span>") + html.count(": wrong</span>") == 3
    acc = json.loads((ev / "metrics.json").read_text())["top1_accuracy"]
    assert f"test accuracy {acc:.1%}" in text and "chance 33.3%" in text
    assert "target" not in text
    assert text.rstrip().splitlines()[-4] == "next steps:"
    assert f"open {ev / 'report.html'}" in text and "vidaction predict" in text
    for step in range(1, 7):
        assert f"[{step}/6]" in text


def test_a_second_demo_keeps_the_first_run(tmp_path):
    assert _new_run_dir(tmp_path, force=False) == tmp_path / "run"
    (tmp_path / "run").mkdir()
    assert _new_run_dir(tmp_path, force=False) == tmp_path / "run-2"
    (tmp_path / "run-2").mkdir()
    assert _new_run_dir(tmp_path, force=False) == tmp_path / "run-3"
    assert _new_run_dir(tmp_path, force=True) == tmp_path / "run"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "vidaction.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_builtin_unknown_class_is_one_line(tmp_path):
    r = _cli("data", "builtin", "--out", str(tmp_path / "x"), "--classes", "clap,moonwalk")
    assert r.returncode == 1
    assert "moonwalk" in r.stderr and r.stderr.strip().count("\n") == 0
    assert not (tmp_path / "x").exists()


def test_builtin_refuses_to_overwrite_other_data(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    r = _cli("data", "builtin", "--out", str(tmp_path / "mine"), "--classes", "clap",
             "--clips-per-class", "3", "--size", "32", "--seconds", "0.4", "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "force" in r.stderr
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"


def test_builtin_and_preview_from_the_cli(tmp_path):
    r = _cli("data", "builtin", "--out", str(tmp_path / "d"), "--classes", "clap,bow",
             "--clips-per-class", "3", "--size", "32", "--seconds", "0.4", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = _cli("data", "preview", str(tmp_path / "d"), "--out", str(tmp_path / "s.png"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = _cli("data", "preview", str(tmp_path / "nothing"), "--out", str(tmp_path / "t.png"))
    assert r.returncode == 1 and "nothing" in r.stderr and "Traceback" not in r.stderr


def test_bad_number_flag_is_rejected():
    r = _cli("data", "builtin", "--out", "x", "--clips-per-class", "0")
    assert r.returncode == 2 and "must be at least 1" in r.stderr
