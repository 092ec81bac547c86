"""A run folder damaged after training: predict says so in one line, never a traceback and
never a wrong label."""

import json
import shutil

import pytest

from conftest import make_video
from vidaction.cli import main

CLASSES = ["clap", "sit_down", "stand_up"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder as train leaves it (untrained weights: only loading is tested here)."""
    from vidaction.models import create_model, save_model

    run = tmp_path_factory.mktemp("damaged") / "run"
    save_model(create_model("r2plus1d", 3, frames=4, size=32), run / "model")
    (run / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    (run / "config.json").write_text(json.dumps({
        "classes": CLASSES,
        "model": {"name": "r2plus1d", "frames": 4, "size": 32, "num_classes": 3},
        "sampling": {"n_frames": 4, "frame_step": 3, "size": 32, "resize": "letterbox"},
        "train": {"batch_size": 3}}))
    return run


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("v") / "v.mp4", 30)


def _predict(run, video, capsys):
    rc = main(["predict", str(run), str(video), "--no-progress"])
    return rc, capsys.readouterr()


def test_the_intact_run_predicts(run, video, capsys):
    rc, cap = _predict(run, video, capsys)
    assert rc == 0, cap.err
    assert any(c in cap.out for c in CLASSES)


@pytest.mark.parametrize("part", ["data-00000-of-00001", "index"])
def test_damaged_weights_are_one_line(run, video, tmp_path, capsys, part):
    bad = shutil.copytree(run, tmp_path / "run")
    f = bad / "model" / f"weights.{part}"
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) // 2])
    rc, cap = _predict(bad, video, capsys)
    assert rc == 1
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    assert str(bad / "model" / "weights") in lines[0] and "damaged" in lines[0]


@pytest.mark.parametrize("edit", ["reordered", "one more", "one less"])
def test_a_hand_edited_classes_txt_is_one_line(run, video, tmp_path, capsys, edit):
    bad = shutil.copytree(run, tmp_path / "run")
    classes = {"reordered": CLASSES[::-1], "one more": [*CLASSES, "wave"],
               "one less": CLASSES[:2]}[edit]
    (bad / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    rc, cap = _predict(bad, video, capsys)
    assert rc == 1
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    assert str(bad / "classes.txt") in lines[0] and "config.json" in lines[0]
    assert ", ".join(CLASSES) in lines[0]  # how to put it back
