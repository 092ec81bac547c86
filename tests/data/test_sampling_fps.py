"""--fps: frames per second of video, each video's frame step from its own rate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import frame_id
from vidaction.cli import main
from vidaction.data.sampling import SamplingConfig, frame_step_for, sample_clips


@pytest.mark.parametrize("video_fps, fps, step", [
    (30, 5, 6), (29.97, 5, 6), (25, 5, 5), (24, 5, 5), (10, 5, 2), (12.5, 5, 3),  # halves up
    (3, 5, 1), (60, 7.5, 8), (0, 5, None), (float("nan"), 5, None), (30, None, None)])
def test_frame_step_is_the_rate_ratio_rounded(video_fps, fps, step):
    assert frame_step_for(video_fps, fps) == step


def test_at_rate_and_the_recorded_config():
    cfg = SamplingConfig(8, 15, 64, fps=5.0)
    assert cfg.at_rate(30).frame_step == 6 and cfg.at_rate(30).fps == 5.0
    assert cfg.at_rate(0) is cfg  # rate unknown: the given frame step
    assert cfg.as_dict()["fps"] == 5.0
    assert "fps" not in SamplingConfig(8, 15, 64).as_dict()  # older runs' keys unchanged
    assert SamplingConfig(8, 15, 64).at_rate(30).frame_step == 15
    with pytest.raises(ValueError, match="fps"):
        SamplingConfig(fps=0)


def test_clips_of_videos_at_different_rates_cover_the_same_time(video_factory):
    cfg = SamplingConfig(n_frames=3, frame_step=1, size=64, fps=5.0)
    for rate, step in ((25, 5), (10, 2)):
        path = video_factory(f"v{rate}.mp4", n=40, fps=rate)
        clips, masks = sample_clips(path, cfg, clips=1)
        ids = [frame_id(f) for f in clips[0]]
        assert masks[0].all() and list(np.diff(ids)) == [step, step]


def test_train_records_fps_and_evaluate_takes_its_own(data, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--data", str(data), "--out", str(out), "--model", "r2plus1d",
            "--epochs", "1", "--batch-size", "3", "--frames", "4", "--size", "32",
            "--no-progress"]
    with pytest.raises(SystemExit) as e:
        main([*base, "--fps", "5", "--frame-step", "3"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert main([*base, "--fps", "12.5"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["sampling"]["fps"] == 12.5 and config["train"]["fps"] == 12.5
    capsys.readouterr()
    assert main(["evaluate", str(out), "--fps", "25", "--no-progress"]) == 0
    metrics = json.loads((out / "eval" / "test" / "metrics.json").read_text())
    assert metrics["sampling"]["fps"] == 25
    assert main(["evaluate", str(out), "--frame-step", "2", "--force", "--no-progress"]) == 0
    metrics = json.loads((out / "eval" / "test" / "metrics.json").read_text())
    assert metrics["sampling"]["frame_step"] == 2 and "fps" not in metrics["sampling"]
