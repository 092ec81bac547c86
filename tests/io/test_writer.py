"""Atomic outputs: a failed write names the file the user asked for, a set of files or a
folder appears whole or not at all, and what a killed writer left is cleaned next time."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidaction.errors import VidactionError
from vidaction.io import writer
from vidaction.io.writer import (
    WriteError,
    atomic_folder,
    clean_stale,
    os_reason,
    write_atomic,
    write_together,
)

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _full_disk_for(monkeypatch, name: str) -> None:
    """Writes of files whose final name is `name` fail as on a full disk (the data goes to
    a temporary first, so match its .STEM.PID.tmpSUFFIX name)."""
    real = writer._write

    def write(tmp: Path, data):
        if tmp.name.startswith("." + Path(name).stem + ".") and tmp.suffix == Path(name).suffix:
            tmp.write_bytes(b"partial")  # half a file, as a real full disk leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tmp, data)

    monkeypatch.setattr(writer, "_write", write)


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "out" / "metrics.json"
    write_atomic(target, "old\n")
    _full_disk_for(monkeypatch, "metrics.json")
    with pytest.raises(WriteError) as e:
        write_atomic(target, "new\n")
    assert str(e.value) == f"{target}: No space left on device"
    assert isinstance(e.value, VidactionError) and isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOSPC
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "x").write_text("a file")
    with pytest.raises(WriteError) as e:
        write_atomic(tmp_path / "x" / "o.json", "{}")
    assert str(e.value).startswith(f"{tmp_path / 'x' / 'o.json'}: cannot create it")
    assert "is not a folder" in str(e.value)


def test_files_written_together_appear_together(tmp_path, monkeypatch):
    csv, js, png = (tmp_path / f"tl{s}" for s in (".csv", ".json", ".png"))
    csv.write_text("old csv")
    _full_disk_for(monkeypatch, "tl.png")
    with pytest.raises(WriteError) as e:
        write_together([(csv, "new csv"), (js, "{}"), (png, b"\x89PNG")])
    assert str(e.value) == f"{png}: No space left on device"
    assert csv.read_text() == "old csv" and not js.exists() and not png.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tl.csv"]  # no temporaries

    monkeypatch.undo()
    assert write_together([(csv, "new csv"), (js, "{}"), (png, b"\x89PNG")]) == [csv, js, png]
    assert csv.read_text() == "new csv" and png.read_bytes() == b"\x89PNG"


def test_a_folder_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "eval"
    with pytest.raises(KeyboardInterrupt), atomic_folder(out) as tmp:
        write_atomic(tmp / "metrics.json", "{}")
        raise KeyboardInterrupt  # interrupted midway through writing the set
    assert list(tmp_path.iterdir()) == []

    _full_disk_for(monkeypatch, "report.html")
    with pytest.raises(WriteError) as e, atomic_folder(out) as tmp:
        write_atomic(tmp / "metrics.json", "{}")
        write_atomic(tmp / "report.html", "<html>")
    assert str(e.value) == f"{out / 'report.html'}: No space left on device"  # not the tmp
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    for text in ("first", "second"):
        with atomic_folder(out) as tmp:
            write_atomic(tmp / "report.html", text)
    assert (out / "report.html").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["eval"]


def test_what_killed_writers_left_is_cleaned_and_live_ones_kept(tmp_path):
    out = tmp_path / "model"
    dead, live = dead_pid(), os.getppid()
    stale = [tmp_path / f".model.tmp-{dead}", tmp_path / f"model.tmp-{dead}"]
    for d in stale:
        d.mkdir()
        (d / "weights.index").write_text("half")
    (tmp_path / f".model.{dead}.tmp").write_text("half a file")
    running = tmp_path / f".model.tmp-{live}"
    running.mkdir()
    (tmp_path / f".model.old-{dead}").mkdir()
    (tmp_path / f".model.old-{dead}" / "model.json").write_text("previous")
    other = tmp_path / f".other.tmp-{dead}"  # another output's: not ours to touch
    other.mkdir()

    clean_stale(out)
    assert not any(d.exists() for d in stale)
    assert not (tmp_path / f".model.{dead}.tmp").exists()
    assert running.is_dir() and other.is_dir()
    # the previous version set aside by a swap that was killed comes back
    assert (out / "model.json").read_text() == "previous"

    (tmp_path / f".model.old-{dead}").mkdir()
    clean_stale(out)  # `model` exists now: the set-aside copy is just removed
    assert not (tmp_path / f".model.old-{dead}").exists()
    assert (out / "model.json").read_text() == "previous"


def test_an_input_error_inside_the_block_is_not_renamed(tmp_path):
    missing = tmp_path / "input.mp4"
    with pytest.raises(FileNotFoundError) as e, writer.atomic_path(tmp_path / "o.mp4") as tmp:
        tmp.write_bytes(missing.read_bytes())
    assert not isinstance(e.value, WriteError) and e.value.filename == str(missing)


def test_reasons_in_words():
    assert os_reason(ENOSPC) == "No space left on device"
    assert os_reason(OSError("20480 requested and 17376 written")) == \
        "only 17376 of 20480 bytes written (no space left on device?)"

    class FakeTFError(Exception):  # what TensorFlow's file ops raise, message first
        message = "run/checkpoints/ckpt-1.tempstate123; No space left on device"

    FakeTFError.__module__ = "tensorflow.python.framework.errors_impl"
    assert os_reason(FakeTFError()) == "No space left on device"
    assert writer.is_write_failure(FakeTFError()) and not writer.is_write_failure(ValueError())


def test_row_padding_is_zeroed_and_the_picture_kept():
    import av

    from vidaction.io.writer import _zero_row_padding

    rgb = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    for plane in frame.planes:  # what FFmpeg may leave there
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        assert plane.line_size > plane.width
        rows[:, plane.width:] = 0xAB
    visible = frame.to_ndarray().copy()
    _zero_row_padding(frame)
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        assert not rows[:, plane.width:].any()
    np.testing.assert_array_equal(frame.to_ndarray(), visible)


def test_the_same_frames_encode_to_the_same_bytes(tmp_path):
    import hashlib

    from vidaction.io import write_video

    base = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    frames = [np.roll(base, k, axis=1) for k in range(30)]
    digests = {hashlib.sha1(write_video(tmp_path / f"{i}.mp4", frames, fps=25).read_bytes())
               .hexdigest() for i in range(40)}
    assert len(digests) == 1  # padding left uninitialised: several distinct files
