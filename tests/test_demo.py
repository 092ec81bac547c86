import subprocess
import sys

from vidaction.demo import MISSING_STAGES, run_demo


def test_demo_runs_the_data_stages_and_names_what_is_missing(tmp_path, capsys):
    tiny = dict(classes=["clap", "sit_down", "stand_up"], clips_per_class=5, size=48,
                seconds=1.0)
    assert run_demo(tmp_path / "demo", progress=False, data=tiny) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "demo" / "data" / "classes.txt").read_text().split() == [
        "clap", "sit_down", "stand_up"]
    assert (tmp_path / "demo" / "preview.png").stat().st_size > 1000
    assert "all files readable" in out
    for name, _ in MISSING_STAGES:
        assert name in out.split("Not available yet")[1]
    # a second run reuses the rendered data instead of failing or re-rendering
    assert run_demo(tmp_path / "demo", progress=False, data=tiny) == 0


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
