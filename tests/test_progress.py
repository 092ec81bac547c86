"""Bars only on a terminal; one line per finished step elsewhere; --progress forces bars;
warnings never glued onto a bar."""

import io
import os
import subprocess
import sys
import warnings

import pytest

from vidaction import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def _auto():
    progress.force_bars(None)
    yield
    progress.force_bars(None)


def test_no_bar_off_a_terminal_one_line_when_done():
    out = io.StringIO()
    with progress.bar(total=3, desc="checking", unit="file", file=out) as b:
        for _ in range(3):
            b.update()
    text = out.getvalue()
    assert "\r" not in text
    assert text.splitlines() == [text.splitlines()[0]]
    assert text.startswith("checking: 3/3 files in ")


def test_iterable_and_disabled_and_no_summary():
    out = io.StringIO()
    assert list(progress.bar(range(4), desc="x", file=out)) == [0, 1, 2, 3]
    assert out.getvalue().startswith("x: 4/4 in ")  # no unit given: no "its"
    quiet = io.StringIO()
    with progress.bar(total=2, enabled=False, file=quiet) as b:
        b.update(2)
    with progress.bar(total=2, summary=False, file=quiet) as b:
        b.update(2)
    assert quiet.getvalue() == ""


def test_the_line_says_the_unit_in_english_or_none():
    def line(**kw):
        out = io.StringIO()
        with progress.bar(file=out, **kw) as b:
            b.update(kw.get("total") or 1)
        return out.getvalue().split(" in ")[0]

    # the int8 export's calibration bar passes no unit: tqdm's "it" must not leak
    assert line(total=24, desc="calibration clips") == "calibration clips: 24/24"
    assert line(total=24, desc="c", unit="it") == "c: 24/24"
    assert line(total=1, desc="checking", unit="file") == "checking: 1/1 file"
    assert line(total=3, desc="fit", unit="batch") == "fit: 3/3 batches"
    assert line(desc="stream", unit="frame") == "stream: 1 frame"
    assert [progress.counted(n, "video") for n in (0, 1, 2)] == ["0 videos", "1 video",
                                                                  "2 videos"]
    assert progress.plural(2, "class") == "classes" and progress.plural(1, "class") == "class"


def test_a_terminal_gets_a_bar_and_force_draws_one_anywhere():
    tty = _Tty()
    with progress.bar(total=2, desc="t", file=tty) as b:
        b.update(2)
    assert "\r" in tty.getvalue()
    progress.force_bars()
    out = io.StringIO()
    with progress.bar(total=2, desc="t", file=out) as b:
        b.update(2)
    assert "\r" in out.getvalue() and "0/2" in out.getvalue()


def test_a_warning_during_a_bar_is_its_own_line(monkeypatch):
    progress.force_bars()
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = progress.warning_hook
        with progress.bar(total=2, desc="work") as b:
            b.update()
            warnings.warn("cache disk full", stacklevel=1)
            b.update()
    # the bar line is cleared ("\r" + blanks + "\r") before the warning's own line
    lines = err.getvalue().replace("\r", "\n").splitlines()
    assert "vidaction: warning: cache disk full" in lines


def _cli(args, tmp_path):
    env = {**os.environ, "COLUMNS": "100"}
    # bytes: text mode would turn a bar's "\r" into "\n"
    r = subprocess.run([sys.executable, "-m", "vidaction.cli", *args], cwd=tmp_path,
                       capture_output=True, timeout=120, env=env)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(),
                                       r.stderr.decode())


def test_cli_with_stderr_piped_draws_no_bars_and_progress_forces_them(tmp_path):
    args = ["data", "builtin", "--classes", "bow,clap", "--clips-per-class", "2",
            "--size", "32", "--seconds", "1"]
    r = _cli([*args, "--out", str(tmp_path / "a")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    steps = [ln for ln in r.stderr.splitlines() if ln.startswith("rendering clips")]
    assert len(steps) == 1 and steps[0].startswith("rendering clips: 4/4 clips in ")
    forced = _cli(["--progress", *args, "--out", str(tmp_path / "b")], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "\rrendering clips:   0%|" in forced.stderr
    quiet = _cli([*args, "--out", str(tmp_path / "c"), "--no-progress"], tmp_path)
    assert "rendering clips" not in quiet.stderr
    check = _cli(["data", "check", str(tmp_path / "a")], tmp_path)
    assert check.returncode == 0, check.stderr
    assert "\r" not in check.stderr
    assert [ln for ln in check.stderr.splitlines() if ln.startswith("checking")] == [
        next(ln for ln in check.stderr.splitlines() if ln.startswith("checking: 4/4 files in "))]


def test_opencv_camera_warnings_are_silenced():
    code = "import vidaction, cv2\ncv2.VideoCapture(57)\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items()
                                        if k not in ("OPENCV_LOG_LEVEL", "VIDACTION_TF_LOGS")})
    assert "WARN" not in r.stderr, r.stderr
