import json
import re
import subprocess
import sys

import pytest

from conftest import make_video
from vidaction.data.check import POSITIONS, check_file
from vidaction.data.sampling import SamplingConfig, sampled_indices
from vidaction.io import VideoReader, probe, verify

# keyframes every 10 frames, no B-frames: a garbled packet breaks its frame and the rest
# of its group of pictures, nothing else
GOP10 = {"x264-params": "bframes=0:keyint=10:min-keyint=10:scenecut=0"}


def _dataset_with_bad_files(root):
    for split in ("train", "test"):
        for cls in ("clap", "wave"):
            for i in range(2):
                make_video(root / split / cls / f"{i}.avi", 30)
    good = make_video(root / "train" / "clap" / "long.avi", 200)
    (root / "train" / "clap" / "cut.avi").write_bytes(good.read_bytes()[: int(
        good.stat().st_size * 0.7)])
    (root / "test" / "wave" / "zero.mp4").write_bytes(b"")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "vidaction.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_check_lists_bad_files_and_exits_1(tmp_path):
    _dataset_with_bad_files(tmp_path)
    r = _run("data", "check", str(tmp_path), "--no-progress")
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert f"{tmp_path / 'train' / 'clap' / 'cut.avi'}: truncated" in out
    assert f"{tmp_path / 'test' / 'wave' / 'zero.mp4'}: empty" in out
    assert "2 unreadable file(s)" in out
    # readable files are counted per class and split: clap train = 2 + long.avi
    clap = next(line for line in out.splitlines() if line.startswith("clap"))
    assert clap.split()[1:] == ["3", "2", "5"]
    wave = next(line for line in out.splitlines() if line.startswith("wave"))
    assert wave.split()[1:] == ["2", "2", "4"]
    assert "Traceback" not in r.stderr


def test_check_clean_dataset_exits_0(tmp_path):
    for cls in ("a", "b"):
        make_video(tmp_path / "train" / cls / "1.mp4", 10)
    r = _run("data", "check", str(tmp_path), "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all files readable" in r.stdout


@pytest.mark.parametrize("layout", ["class-folders", "split-folders"])
def test_check_leaves_the_dataset_untouched(tmp_path, layout):
    from vidaction.data.check import check_dataset

    for cls in ("a", "b"):
        for i in range(3):
            sub = (cls,) if layout == "class-folders" else ("train", cls)
            make_video(tmp_path.joinpath(*sub, f"{i}.mp4"), 10)
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    report = check_dataset(tmp_path, progress=False)
    assert report.dataset.classes == ["a", "b"] and not report.bad
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "classes.txt").exists()


def test_check_on_a_flat_folder_of_videos_asks_for_class_folders(tmp_path):
    for i in range(3):
        make_video(tmp_path / f"{i}.mp4", 10)
    r = _run("data", "check", str(tmp_path), "--no-progress")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert f"{tmp_path}: 3 videos but no class folders" in r.stderr
    assert "ROOT/<class>/<video>" in r.stderr


def test_check_report_counts_read_in_english(tmp_path):
    from vidaction.data.check import check_dataset, format_report

    make_video(tmp_path / "clap" / "0.mp4", 10)  # one class, one video, under one clip
    text = format_report(check_dataset(tmp_path, progress=False))
    assert f"{tmp_path}  (class-folders, 1 class, 1 file)" in text
    assert "1 of 1 readable video is shorter than one clip" in text
    make_video(tmp_path / "wave" / "0.mp4", 10)
    text = format_report(check_dataset(tmp_path, progress=False))
    assert "(class-folders, 2 classes, 2 files)" in text
    assert "2 of 2 readable videos are shorter than one clip" in text


def test_check_missing_folder_is_one_line(tmp_path):
    r = _run("data", "check", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "nope" in r.stderr and "Traceback" not in r.stderr


def _packets(path):
    """(byte offset, size, keyframe) of each video packet, in display order."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        rows = [(p.pts, p.pos, p.size, p.is_keyframe) for p in c.demux(s)
                if p.size and p.pts is not None]
    return [r[1:] for r in sorted(rows)]


def _garble(path, frame):
    """Zero the bytes of one frame's packet: the header and the index still parse."""
    pos, size, _ = _packets(path)[frame]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = bytes(size)
    path.write_bytes(bytes(data))


def _broken_midway(tmp_path, sampled: bool):
    """A 200-frame MP4 with one frame garbled in the middle: a frame that runs read by
    index (sampled) or one in a group of pictures that no run reads from."""
    path = make_video(tmp_path / "data" / "train" / "clap" / "broken.mp4", 200, gop=10,
                      options=GOP10)
    make_video(tmp_path / "data" / "train" / "clap" / "good.mp4", 200, gop=10, options=GOP10)
    want = set(sampled_indices(200, SamplingConfig(), POSITIONS))
    keys = [i for i, (_, _, k) in enumerate(_packets(path)) if k]
    assert keys[:3] == [0, 10, 20]
    if sampled:
        frame = 62  # the second frame of the centre clip
        assert frame in want
    else:  # the middle of a group of pictures with no sampled frame
        frame = next(k + 5 for k in keys if not want & set(range(k, k + 10)))
    _garble(path, frame)
    return path, frame


def _where(reason):
    m = re.match(r"frame (\d+) of 200 could not be decoded: ", reason or "")
    assert m, reason
    return int(m.group(1))


def test_default_check_decodes_the_frames_runs_read(tmp_path):
    """The old checks (probe; probe + last frame) call this file readable; training would
    skip it at its first epoch."""
    path, frame = _broken_midway(tmp_path, sampled=True)
    assert probe(path).frame_count == 200
    assert verify(path).frame_count == 200
    assert check_file(path, "quick")[0] is None
    r = _run("data", "check", str(tmp_path / "data"), "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = next(x for x in r.stdout.splitlines() if "broken.mp4" in x)
    assert line.strip().startswith(f"{path}: frame ")
    assert frame - 10 < _where(line.split(": ", 1)[1]) <= frame  # located by a sequential
    assert "1 unreadable file(s)" in r.stdout                   # decode, at the break


def test_full_decodes_every_frame(tmp_path):
    path, frame = _broken_midway(tmp_path, sampled=False)
    assert check_file(path)[0] is None  # nothing a run reads is broken
    r = _run("data", "check", str(tmp_path / "data"), "--no-progress", "--full")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = next(x for x in r.stdout.splitlines() if "broken.mp4" in x)
    assert frame - 10 < _where(line.split(f"{path}: ", 1)[1]) <= frame
    good = check_file(path.with_name("good.mp4"), "full")
    assert good[0] is None and good[2] == 200


@pytest.mark.parametrize("yielded,reason", [
    (17, "truncated: frame 17 of 30 could not be decoded (a sequential decode ends there)"),
    (31, "frame count wrong: a sequential decode gives 31 frames, the index 30")])
def test_full_reports_a_frame_count_the_decode_contradicts(tmp_path, monkeypatch, yielded,
                                                           reason):
    path = make_video(tmp_path / "v.avi", 30)
    monkeypatch.setattr(VideoReader, "iter_frames", lambda self, transform=None: iter(
        [None] * yielded))
    assert check_file(path, "full")[:3:2] == (reason, yielded)
    assert check_file(path)[0] is None  # the sampled frames read fine


def test_json_and_verbose_give_each_file(tmp_path):
    _dataset_with_bad_files(tmp_path)
    r = _run("data", "check", str(tmp_path), "--no-progress", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    report = json.loads(r.stdout)  # nothing but the JSON on stdout
    files = {f["path"]: f for f in report["files"]}
    good = files[str(tmp_path / "train" / "clap" / "long.avi")]
    assert good == {**good, "ok": True, "reason": None, "frames": 200, "fps": 25.0,
                    "size": "64x48", "codec": "mpeg4", "split": "train", "class": "clap"}
    assert good["read_mode"] in ("pts", "decoded")
    bad = files[str(tmp_path / "test" / "wave" / "zero.mp4")]
    assert not bad["ok"] and bad["reason"].startswith("empty") and bad["frames"] is None
    assert report["summary"] == {**report["summary"], "files": 11, "readable": 9,
                                 "unreadable": 2}
    assert report["summary"]["counts"]["clap"] == {"train": 3, "val": 0, "test": 2}
    assert report["check"] == "sampled" and report["sampling"] == {"frames": 8,
                                                                   "frame_step": 15}

    r = _run("data", "check", str(tmp_path), "--no-progress", "--verbose")
    line = next(x for x in r.stdout.splitlines() if x.endswith("long.avi"))
    assert line.split()[:6] == ["200", "25.00", "64x48", "mpeg4", good["read_mode"], "ok"]
    line = next(x for x in r.stdout.splitlines() if "zero.mp4" in x and " bad " in x)
    assert line.split()[:6] == ["-"] * 5 + ["bad"]
    assert "2 unreadable file(s)" in r.stdout


@pytest.mark.parametrize("full", [False, True], ids=["sampled", "full"])
def test_every_real_recording_is_readable(tmp_path, full):
    """The shared real files (UCF101 packed B-frames, H.264 in AVI, MKV, MP4), laid out as a
    dataset of links: each one is readable, with the frames of a sequential decode."""
    from conftest import real_video_paths, sequential_digests

    paths = real_video_paths()
    for p in paths:
        (tmp_path / p.stem).mkdir()
        (tmp_path / p.stem / p.name).symlink_to(p)
    r = _run("data", "check", str(tmp_path), "--no-progress", "--json",
             *(["--full"] if full else []))
    assert r.returncode == 0, r.stderr
    files = {f["path"]: f for f in json.loads(r.stdout)["files"]}
    assert len(files) == len(paths)
    for p in paths:
        got = files[str(tmp_path / p.stem / p.name)]
        assert got["ok"], (p.name, got["reason"])
        assert got["frames"] == len(sequential_digests(p)), p.name


@pytest.mark.parametrize("flags,words", [(["--quick", "--full"], "not allowed with"),
                                         (["--frames", "0"], "must be at least 1"),
                                         (["--frame-step", "-3"], "must be at least 1")])
def test_contradicting_or_out_of_range_check_flags_are_one_line(tmp_path, flags, words):
    make_video(tmp_path / "clap" / "a.mp4", 10)
    r = _run("data", "check", str(tmp_path), *flags)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert words in r.stderr.strip().splitlines()[-1]
