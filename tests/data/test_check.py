import subprocess
import sys

from conftest import make_video


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


def test_check_missing_folder_is_one_line(tmp_path):
    r = _run("data", "check", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "nope" in r.stderr and "Traceback" not in r.stderr
