"""`train --model pose-*`: keypoints per clip from the pose estimator, an unreadable clip
skipped and named, missing estimator weights one line with nothing left behind."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import shared_model, tiny_config
from vidaction.errors import VidactionError


def test_a_skeleton_run_skips_an_unreadable_clip_and_records_its_estimator(data, tmp_path):
    weights = shared_model("movenet_singlepose_lightning_int8_4.tflite")
    from vidaction.train import train

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    broken = sorted((copy / "train").rglob("*.mp4"))[0]
    broken.write_bytes(broken.read_bytes()[:300])  # cut short
    run = train(tiny_config(copy, tmp_path / "run", model="pose-stats", frames=8, size=None,
                            epochs=1, pose_weights=str(weights)), progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["pose"] == {"model": "movenet", "weights": str(weights), "track": True,
                              "fps": 10.0, "frames": 8, "stride": 5}
    history = json.loads((run / "history.json").read_text())
    assert str(broken) in json.dumps(history)  # the skipped file is named
    assert (run / "model" / "model.json").is_file()


def test_missing_estimator_weights_are_one_line_and_leave_no_run(data, tmp_path):
    from vidaction.train import train

    gone = tmp_path / "nowhere" / "movenet.tflite"
    with pytest.raises(VidactionError, match="movenet.tflite"):
        train(tiny_config(data, tmp_path / "run", model="pose-stats", frames=8, size=None,
                          epochs=1, pose_weights=str(gone)), progress=False)
    assert not (tmp_path / "run").exists()
