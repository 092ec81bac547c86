"""From figures to people: a skeleton model trained on the built-in rendered figures, with
keypoints from the official MoveNet run on the rendered clips, recognises a real person.

One small run (all built-in classes, 12 clips each, 3 s at 10 fps, 256 px, the "pose"
variation) is trained once for the module; keypoints are computed once per clip (cached).
The estimator and the real clip come from ../shared, so these tests skip where it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import real_clip, shared_model
from vidaction.cli import main

MOVENET = "movenet_singlepose_lightning_int8_4.tflite"


def _jumping_jacks() -> Path:
    return real_clip("jumping_jacks.mp4")


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory) -> Path:
    weights = shared_model(MOVENET)
    from vidaction.data.builtin import render_dataset
    from vidaction.train import TrainConfig, train

    root = tmp_path_factory.mktemp("pose-run")
    data = render_dataset(root / "data", clips_per_class=12, size=256, seconds=3.0, fps=10,
                          seed=0, variation="pose", progress=False)
    return train(TrainConfig(data=str(data), out=str(root / "run"), model="pose-stats",
                             epochs=60, batch_size=16, pretrained="none", patience=15,
                             pose_weights=str(weights)), progress=False)


def test_real_jumping_jacks_are_jumping_jacks(pose_run, capsys):
    jj = _jumping_jacks()
    rc = main(["predict", str(pose_run), str(jj), "--json", "--no-progress"])
    out, _ = capsys.readouterr()
    assert rc == 0
    top = json.loads(out)["top"]
    assert top[0]["label"] == "jumping_jacks", top


def test_unseen_actors_of_the_built_in_set(pose_run):
    import vidaction
    from vidaction.infer.predict import predict_video

    run = vidaction.load_run(pose_run)
    config = json.loads((pose_run / "config.json").read_text())
    assert config["pose"]["model"] == "movenet" and config["model"]["name"] == "pose-stats"
    data = Path(config["train"]["data"])
    test = [c for c in json.loads((data / "manifest.json").read_text())["clips"]
            if c["split"] == "test"]
    right = [predict_video(run, data / c["path"], None, 3).top(run.classes, 1)[0][0]
             == c["class"] for c in test]
    assert np.mean(right) >= 0.6, np.mean(right)  # 14 classes: chance is 0.07
    # `evaluate` scores the same windows the same way
    from vidaction.evaluate.run import evaluate_run

    metrics = evaluate_run(pose_run, split="test", force=True, progress=False)
    assert metrics["top1_accuracy"] == pytest.approx(np.mean(right))


def test_timeline_stream_export_and_bad_inputs(pose_run, tmp_path, capsys):
    jj = _jumping_jacks()
    prefix = tmp_path / "jj"
    rc = main(["predict", str(pose_run), str(jj), "--timeline", "--stride", "6",
               "--out", str(prefix), "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["window"] == 24 and rec["windows"] >= 5
    assert rec["timeline"][-1]["end_s"] <= 6.5 if "end_s" in rec["timeline"][-1] else True
    assert Path(str(prefix) + ".png").is_file()

    # export: the classifier as a float TFLite, the same logits as the Keras run
    tfl = tmp_path / "pose.tflite"
    assert main(["export", str(pose_run), "--format", "tflite", "--out", str(tfl),
                 "--no-progress"]) == 0
    capsys.readouterr()
    import vidaction
    from vidaction.models.litert import TFLiteRun

    run, lite = vidaction.load_run(pose_run), TFLiteRun(tfl)
    windows = np.random.default_rng(0).uniform(0, 400, (3, 24, 17, 3)).astype(np.float32)
    windows[..., 2] = 0.8
    np.testing.assert_allclose(lite.predict_logits(windows), run.predict_logits(windows),
                               atol=1e-3)
    assert main(["export", str(pose_run), "--format", "tflite", "--quantize", "int8",
                 "--out", str(tmp_path / "q.tflite"), "--no-progress"]) != 0
    assert "int8" in capsys.readouterr().err

    # stream from the .tflite: the pose per frame, the classifier over the last window
    rc = main(["stream", str(tfl), str(jj), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "jumping_jacks" in out

    # bad inputs: one line each, as for any run; the good one is still predicted
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    rc = main(["predict", str(pose_run), str(tmp_path / "gone.mp4"), str(empty), str(text),
               str(jj), "--no-progress"])
    out, err = capsys.readouterr()
    lines = [x for x in err.splitlines() if x.startswith("vidaction: error:")]
    assert rc == 1 and len(lines) == 3, err
    assert "Traceback" not in err and "jumping_jacks" in out
