"""Export: SavedModel and TFLite (float, int8) agree with the Keras run; refusals are clean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidaction.cli import main

T, S = 8, 64
CLASSES = ["clap", "sit_down", "stand_up"]


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A random-init movinet-a0-stream laid out like a run, with a tiny rendered training set
    for int8 calibration (the MoViNet is built once: 15-30 s)."""
    from vidaction.data.builtin import render_dataset
    from vidaction.data.sampling import SamplingConfig
    from vidaction.models import create_model, save_model
    from vidaction.train.run import Run

    root = tmp_path_factory.mktemp("export")
    data = render_dataset(root / "data", classes=CLASSES, clips_per_class=2, size=S,
                          seconds=0.8, fps=25, seed=3, splits=(0.5, 0.0, 0.5), progress=False)
    path = root / "run"
    model = create_model("movinet-a0-stream", len(CLASSES), frames=T, size=S)
    save_model(model, path / "model")
    config = {"model": {"name": "movinet-a0-stream", "frames": T, "size": S,
                        "pretrained": "none", "num_classes": len(CLASSES)},
              "sampling": SamplingConfig(T, 2, S).as_dict(), "classes": CLASSES,
              "train": {"data": str(data), "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
              "dataset": {"root": str(data)}}
    (path / "config.json").write_text(json.dumps(config))
    (path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return Run(path, model, CLASSES, config)


@pytest.fixture(scope="module")
def clips(stream_run):
    """Test clips of the rendered set, as the run samples them."""
    from vidaction.data.sampling import SamplingConfig, sample_clips

    data = stream_run.config["dataset"]["root"]
    from vidaction.data.sources import load_dataset

    cfg = SamplingConfig(**stream_run.config["sampling"])
    paths = [c.path for c in load_dataset(data, write_classes_file=False).split("test")]
    return np.concatenate([sample_clips(p, cfg, clips=1)[0] for p in paths]), paths


@pytest.fixture(scope="module")
def tflite_float(stream_run, tmp_path_factory):
    from vidaction.export import export_run

    out = tmp_path_factory.mktemp("tfl") / "a0 stream.tflite"
    return export_run(stream_run, "tflite", out, progress=False)


def _agree_top1(want: np.ndarray, got: np.ndarray, margin: float = 1e-3) -> None:
    """Same top-1 wherever the Keras logits are not tied (random weights give close ones)."""
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > margin
    assert clear.any()
    assert (want.argmax(1) == got.argmax(1))[clear].all()


def test_tflite_float_stream_matches_keras_frame_by_frame(stream_run, tflite_float, clips):
    from vidaction.export.tflite import TFLiteRun

    assert tflite_float.with_suffix(".labels.txt").read_text().split() == CLASSES
    config = json.loads(tflite_float.with_suffix(".json").read_text())
    assert config["export"]["stream"] and config["model"]["name"] == "movinet-a0-stream"
    assert len(config["export"]["state_names"]) > 10

    lite = TFLiteRun(tflite_float)
    assert lite.classes == CLASSES and lite.config["sampling"]["n_frames"] == T
    batch = clips[0]
    want = stream_run.predict_logits(batch)
    streamer = lite.streamer()
    for clip, w in zip(batch[:2], want[:2], strict=False):
        streamer.reset()
        for frame in clip:
            got = streamer.step(frame)
        np.testing.assert_allclose(got, w, atol=1e-4, rtol=0)
    got = lite.predict_logits(batch)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    _agree_top1(want, got)


def test_predict_and_stream_take_the_tflite(stream_run, tflite_float, clips, capsys):
    from vidaction.infer.load import load_predictor, sampling_config
    from vidaction.infer.predict import predict_video

    lite = load_predictor(tflite_float)
    cfg = sampling_config(lite)
    paths = clips[1]
    keras = np.stack([predict_video(stream_run, p, cfg, 1).probs for p in paths])
    tfl = np.stack([predict_video(lite, p, cfg, 1).probs for p in paths])
    np.testing.assert_allclose(tfl, keras, atol=1e-4)
    _agree_top1(np.log(keras), np.log(tfl), margin=1e-4)

    code = main(["stream", str(tflite_float), "--source", str(paths[0]), "--every", "1",
                 "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0 and "end of" in err
    assert out.split()[3] in CLASSES  # "   0.00s  frame  0  LABEL  0.42"


def test_int8_export_calibrates_on_training_clips(stream_run, tflite_float, clips, tmp_path):
    from vidaction.export import export_run
    from vidaction.export.tflite import TFLiteRun

    out = export_run(stream_run, "tflite", tmp_path / "q.tflite", quantize="int8",
                     progress=False)
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["export"]["quantize"] == "int8" and config["export"]["calibration_clips"] == 3
    assert out.stat().st_size < tflite_float.stat().st_size / 2
    got = TFLiteRun(out).predict_logits(clips[0])
    want = stream_run.predict_logits(clips[0])
    assert got.shape == want.shape and np.isfinite(got).all()
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    print(f"int8 top-1 agreement with Keras: {agree:.2f} on {len(want)} clips, "
          f"max |logit diff| {np.abs(got - want).max():.3f}")


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """A clip model (r2plus1d: whole clips in, no stream mode), laid out like a run."""
    from vidaction.models import create_model
    from vidaction.train.run import Run

    path = tmp_path_factory.mktemp("cliprun") / "run"
    path.mkdir()
    config = {"model": {"name": "r2plus1d", "frames": 4, "size": 32, "num_classes": 3},
              "sampling": {"n_frames": 4, "frame_step": 1, "size": 32}, "classes": CLASSES}
    (path / "config.json").write_text(json.dumps(config))
    return Run(path, create_model("r2plus1d", 3, frames=4, size=32), CLASSES, config)


def test_clip_model_savedmodel_and_tflite_match_keras(clip_run, tmp_path):
    import tensorflow as tf

    from vidaction.export import export_run
    from vidaction.export.tflite import TFLiteRun

    batch = np.random.default_rng(0).integers(0, 256, (6, 4, 32, 32, 3), dtype=np.uint8)
    want = clip_run.predict_logits(batch)

    out = export_run(clip_run, "savedmodel", tmp_path / "sm", progress=False)
    assert (out / "labels.txt").read_text().split() == CLASSES
    assert json.loads((out / "vidaction.json").read_text())["export"]["format"] == "savedmodel"
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = serve(clip=tf.constant(batch, tf.float32))
    np.testing.assert_allclose(got["logits"].numpy(), want, atol=1e-4, rtol=0)
    _agree_top1(want, got["logits"].numpy())
    assert np.allclose(got["probabilities"].numpy().sum(1), 1, atol=1e-5)

    lite = TFLiteRun(export_run(clip_run, "tflite", tmp_path / "c.tflite", progress=False))
    assert lite.streamer() is None and lite.classes == CLASSES
    got = lite.predict_logits(batch)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    _agree_top1(want, got)
    dyn = TFLiteRun(export_run(clip_run, "tflite", tmp_path / "d.tflite", quantize="dynamic",
                               progress=False))
    got = dyn.predict_logits(batch)
    assert dyn.config["export"]["quantize"] == "dynamic" and got.shape == want.shape
    print(f"dynamic-range top-1 agreement with Keras: "
          f"{(got.argmax(1) == want.argmax(1)).mean():.2f}")


def test_export_never_overwrites_without_force(stream_run, tflite_float, tmp_path, capsys):
    before = tflite_float.read_bytes()
    args = ["export", str(stream_run.path), "--format", "tflite", "--out", str(tflite_float)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and "--force" in err[0]
    assert tflite_float.read_bytes() == before
    # the labels beside the file count too
    other = tmp_path / "m.tflite"
    other.with_suffix(".labels.txt").write_text("x\n")
    assert main(["export", str(stream_run.path), "--format", "tflite", "--out", str(other)]) == 1
    assert "m.labels.txt already exists" in capsys.readouterr().err
    (tmp_path / "sm").mkdir()
    assert main(["export", str(stream_run.path), "--format", "savedmodel", "--out",
                 str(tmp_path / "sm")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_export_flag_mistakes_one_line(stream_run, tmp_path, capsys):
    run = str(stream_run.path)
    cases = [
        (["--format", "savedmodel", "--quantize", "int8", "--out", str(tmp_path / "a")],
         "--quantize applies to --format tflite only"),
        (["--format", "tflite", "--out", str(tmp_path / "a.bin")], "must end in .tflite"),
    ]
    for extra, msg in cases:
        assert main(["export", run, *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]
    assert main(["export", str(tmp_path / "nope"), "--format", "tflite", "--out",
                 str(tmp_path / "b.tflite")]) == 1
    assert "no such run folder" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tflite"))


def test_tflite_run_needs_its_config(tmp_path):
    from vidaction.errors import VidactionError
    from vidaction.export.tflite import TFLiteRun

    lone = tmp_path / "lone.tflite"
    lone.write_bytes(b"\x00" * 64)
    with pytest.raises(VidactionError, match="lone.json: missing"):
        TFLiteRun(lone)
    lone.with_suffix(".json").write_text("{}")
    with pytest.raises(VidactionError, match="not a TFLite model"):
        TFLiteRun(lone)
