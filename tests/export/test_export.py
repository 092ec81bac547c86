"""Export of clip models: SavedModel and TFLite (float, dynamic, int8) agree with Keras;
refusals are one clean line. Stream MoViNet exports are tested in tests/infer/test_stream.py,
next to the stream model they share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidaction.cli import main
from vidaction.errors import VidactionError
from vidaction.export import ExportError

CLASSES = ["clap", "sit_down", "stand_up"]
T, S = 4, 32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from vidaction.data.builtin import render_dataset

    return render_dataset(tmp_path_factory.mktemp("data") / "tiny", classes=CLASSES,
                          clips_per_class=2, size=S, seconds=0.8, fps=25, seed=3,
                          splits=(0.5, 0.0, 0.5), progress=False)


def _config(name: str, data) -> dict:
    return {"model": {"name": name, "frames": T, "size": S, "num_classes": 3},
            "sampling": {"n_frames": T, "frame_step": 2, "size": S}, "classes": CLASSES,
            "train": {"data": str(data), "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0}}


@pytest.fixture(scope="module")
def tiny_run(data, tmp_path_factory):
    """A small Conv3D clip model laid out like a run: the whole-clip TFLite path."""
    import tf_keras

    from vidaction.models.run import Run

    tf_keras.utils.set_random_seed(0)
    clip = tf_keras.Input((T, S, S, 3), name="clip")
    x = tf_keras.layers.Rescaling(1 / 255)(clip)
    x = tf_keras.layers.Conv3D(8, (3, 3, 3), activation="relu")(x)
    x = tf_keras.layers.GlobalAveragePooling3D()(x)
    model = tf_keras.Model(clip, tf_keras.layers.Dense(3)(x))
    return Run(tmp_path_factory.mktemp("tiny"), model, CLASSES, _config("tiny3d", data))


@pytest.fixture(scope="module")
def r2_run(data, tmp_path_factory):
    """r2plus1d laid out like a run folder (what `vidaction export RUN` reads)."""
    from vidaction.models import create_model, save_model
    from vidaction.models.run import Run

    path = tmp_path_factory.mktemp("r2") / "run"
    model = create_model("r2plus1d", 3, frames=T, size=S)
    save_model(model, path / "model")
    (path / "config.json").write_text(json.dumps(_config("r2plus1d", data)))
    (path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return Run(path, model, CLASSES, _config("r2plus1d", data))


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).integers(0, 256, (6, T, S, S, 3), dtype=np.uint8)


def _agree_top1(want: np.ndarray, got: np.ndarray, margin: float = 1e-3) -> None:
    """Same top-1 wherever the Keras logits are not tied (random weights give close ones)."""
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > margin
    assert clear.any()
    assert (want.argmax(1) == got.argmax(1))[clear].all()


def test_savedmodel_matches_keras(r2_run, batch, tmp_path):
    import tensorflow as tf

    from vidaction.export import export_run

    out = export_run(r2_run, "savedmodel", tmp_path / "sm", progress=False)
    assert (out / "labels.txt").read_text().split() == CLASSES
    config = json.loads((out / "vidaction.json").read_text())
    assert config["export"]["format"] == "savedmodel" and config["model"]["name"] == "r2plus1d"
    assert not list(tmp_path.glob(".*"))  # no temporary left behind
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = serve(clip=tf.constant(batch, tf.float32))
    want = r2_run.predict_logits(batch)
    np.testing.assert_allclose(got["logits"].numpy(), want, atol=1e-4, rtol=0)
    _agree_top1(want, got["logits"].numpy())
    assert np.allclose(got["probabilities"].numpy().sum(1), 1, atol=1e-5)


def test_unconvertible_model_fails_in_one_line_and_writes_nothing(r2_run, tmp_path):
    from vidaction.export import export_run

    # r2plus1d halves frames with AvgPool3D, which TFLite has no builtin for
    with pytest.raises(ExportError, match="TFLite conversion failed: .*AvgPool3D") as e:
        export_run(r2_run, "tflite", tmp_path / "r.tflite", progress=False)
    assert "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())


def test_tflite_float_dynamic_int8_match_keras(tiny_run, batch, tmp_path):
    from vidaction.export import export_run
    from vidaction.models.litert import TFLiteRun

    want = tiny_run.predict_logits(batch)
    lite = TFLiteRun(export_run(tiny_run, "tflite", tmp_path / "c.tflite", progress=False))
    assert lite.streamer() is None and lite.classes == CLASSES
    assert not lite.config["export"]["stream"] and lite.config["sampling"]["n_frames"] == T
    assert (tmp_path / "c.labels.txt").read_text().split() == CLASSES
    got = lite.predict_logits(batch)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    _agree_top1(want, got)
    for quantize in ("dynamic", "int8"):
        q = TFLiteRun(export_run(tiny_run, "tflite", tmp_path / f"{quantize}.tflite",
                                 quantize=quantize, progress=False))
        got = q.predict_logits(batch)
        assert q.config["export"]["quantize"] == quantize and got.shape == want.shape
        assert np.isfinite(got).all()
        print(f"{quantize} top-1 agreement with Keras: "
              f"{(got.argmax(1) == want.argmax(1)).mean():.2f} on {len(want)} clips")
    # int8 calibrated on the run's training split: 3 clips, one per class
    assert q.config["export"]["calibration_clips"] == 3


def test_int8_needs_the_training_clips(tiny_run, tmp_path):
    from vidaction.export import export_run
    from vidaction.models.run import Run

    moved = Run(tiny_run.path, tiny_run.model, CLASSES,
                {**tiny_run.config, "train": {"data": str(tmp_path / "gone")}})
    with pytest.raises(ExportError, match="gone is not there; pass --data"):
        export_run(moved, "tflite", tmp_path / "q.tflite", quantize="int8", progress=False)
    assert not list(tmp_path.iterdir())


def test_export_never_overwrites_without_force(r2_run, tmp_path, capsys):
    run = str(r2_run.path)
    taken = tmp_path / "m.tflite"
    taken.write_bytes(b"mine")
    assert main(["export", run, "--format", "tflite", "--out", str(taken)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "m.tflite already exists" in err[0] and "--force" in err[0]
    assert taken.read_bytes() == b"mine"
    # the labels beside the file count too
    other = tmp_path / "n.tflite"
    other.with_suffix(".labels.txt").write_text("x\n")
    assert main(["export", run, "--format", "tflite", "--out", str(other)]) == 1
    assert "n.labels.txt already exists" in capsys.readouterr().err
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "keep").write_text("x")
    assert main(["export", run, "--format", "savedmodel", "--out", str(tmp_path / "sm")]) == 1
    assert "already exists" in capsys.readouterr().err
    # --force replaces the folder (through the CLI: load_run, then export)
    assert main(["export", run, "--format", "savedmodel", "--out", str(tmp_path / "sm"),
                 "--force"]) == 0
    assert "exported savedmodel" in capsys.readouterr().out
    assert not (tmp_path / "sm" / "keep").exists()
    assert (tmp_path / "sm" / "saved_model.pb").is_file()


def test_export_flag_mistakes_one_line(r2_run, tmp_path, capsys):
    run = str(r2_run.path)
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
    assert not list(tmp_path.iterdir())


def test_tflite_run_needs_its_config(tmp_path):
    from vidaction.models.litert import TFLiteRun

    lone = tmp_path / "lone.tflite"
    lone.write_bytes(b"\x00" * 64)
    with pytest.raises(VidactionError, match="lone.json: missing"):
        TFLiteRun(lone)
    lone.with_suffix(".json").write_text("{}")
    with pytest.raises(VidactionError, match="not a TFLite model"):
        TFLiteRun(lone)


def _enospc(monkeypatch, name: str) -> None:
    """Writing the output file `name` fails as on a full disk."""
    import errno

    from vidaction.io import writer

    real = writer._write
    stem, suffix = name.rsplit(".", 1)

    def write(tmp, data):
        if tmp.name.startswith(f".{stem}.") and tmp.name.endswith(f".{suffix}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tmp, data)

    monkeypatch.setattr(writer, "_write", write)


def test_a_full_disk_is_one_line_naming_the_savedmodel(r2_run, tmp_path, capsys,
                                                        monkeypatch):
    import tensorflow as tf

    real = tf.saved_model.save

    def full(module, path, signatures=None):  # TensorFlow's own error, partway through
        (tmp_path / path / "variables").mkdir(parents=True)
        (tmp_path / path / "variables" / "variables.index").write_bytes(b"half")
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{path}/variables/variables.data-00000-of-00001.tempstate8; No "
                        "space left on device")

    monkeypatch.setattr(tf.saved_model, "save", full)
    out = tmp_path / "served"
    assert main(["export", str(r2_run.path), "--format", "savedmodel", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vidaction: error: {out}: No space left on device"]
    assert not list(tmp_path.iterdir())  # no half SavedModel, no temporary folder
    monkeypatch.setattr(tf.saved_model, "save", real)
    assert main(["export", str(r2_run.path), "--format", "savedmodel", "--out", str(out)]) == 0
    assert (out / "saved_model.pb").is_file() and (out / "labels.txt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["served"]


def test_tflite_files_appear_together_and_leftovers_never_block(r2_run, tmp_path, capsys,
                                                                monkeypatch):
    from vidaction.export import tflite

    # r2plus1d does not convert (AvgPool3D); the bytes of the model do not matter here
    monkeypatch.setattr(tflite, "_convert", lambda *a, **k: b"TFL3 model bytes")
    out = tmp_path / "m.tflite"
    argv = ["export", str(r2_run.path), "--format", "tflite", "--out", str(out)]
    _enospc(monkeypatch, "m.tflite")  # the big file fails, after its labels and config
    assert main(argv) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vidaction: error: {out}: No space left on device"]
    assert not list(tmp_path.iterdir())  # no labels.txt left behind

    monkeypatch.undo()  # the disk has room again
    monkeypatch.setattr(tflite, "_convert", lambda *a, **k: b"TFL3 model bytes")
    assert main(argv) == 0  # no --force needed: nothing was there
    capsys.readouterr()
    assert out.read_bytes() == b"TFL3 model bytes"
    assert json.loads(out.with_suffix(".json").read_text())["export"]["format"] == "tflite"

    # a kill between the renames leaves the side files without the .tflite: a leftover
    out.unlink()
    assert main(argv) == 0
    capsys.readouterr()
    assert out.is_file() and out.with_suffix(".labels.txt").read_text().split() == CLASSES
    # but a JSON file that is not an export's is the user's, and is never replaced
    out.unlink()
    out.with_suffix(".json").write_text('{"mine": true}')
    assert main(argv) == 1
    assert "already exists (--force replaces it)" in capsys.readouterr().err
    assert json.loads(out.with_suffix(".json").read_text()) == {"mine": True}



def test_a_model_with_nan_weights_is_not_exported(r2_run, tmp_path, capsys):
    import shutil

    from vidaction.models import load_model, save_model

    bad = tmp_path / "nan-run"
    shutil.copytree(r2_run.path, bad)
    model = load_model(bad / "model")
    for w in model.weights:
        w.assign(np.full(w.shape, np.nan, w.dtype.as_numpy_dtype))
    save_model(model, bad / "model")
    assert main(["export", str(bad), "--format", "savedmodel", "--out",
                 str(tmp_path / "sm")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"vidaction: error: {bad / 'model'}: the weights hold NaN or inf")
    assert not (tmp_path / "sm").exists()
