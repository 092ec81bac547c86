"""`vidaction demo --pose`: the skeleton model beside the plain demo (MoveNet weights from
../shared, as a user would pass --pose-weights; skipped where it is absent)."""

from __future__ import annotations

import json

from conftest import shared_model
from vidaction.demo import run_pose_demo


def test_pose_demo_trains_the_skeleton_model_and_draws_a_skeleton_gif(tmp_path, capsys):
    weights = shared_model("movenet_singlepose_lightning_int8_4.tflite")
    tiny = dict(classes=["clap", "jumping_jacks", "squats"], clips_per_class=5, size=160,
                seconds=1.5)
    out = tmp_path / "demo"
    assert run_pose_demo(out, progress=False, weights=str(weights), data=tiny,
                         train=dict(epochs=2)) == 0
    text = capsys.readouterr().out
    for step in range(1, 5):
        assert f"[pose {step}/4]" in text
    config = json.loads((out / "pose-run" / "config.json").read_text())
    assert config["model"]["name"] == "pose-stats" and config["pose"]["model"] == "movenet"
    assert (out / "pose-run" / "eval" / "test" / "metrics.json").is_file()
    (gif,) = (out / "pose-run" / "predictions").glob("*.skeleton.gif")
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert "test accuracy" in text and "vidaction predict" in text
    # a second pose demo keeps the first run
    assert run_pose_demo(out, progress=False, weights=str(weights), data=tiny,
                         train=dict(epochs=1)) == 0
    assert (out / "pose-run-2" / "model").is_dir() and (out / "pose-run" / "model").is_dir()
