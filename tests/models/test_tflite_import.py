"""The official int8 MoViNet-A0-Stream .tflite imported into the Keras ReLU6 / no-SE stream
model (models.tflite_import): exact per op, close to the int8 file on real clips in clip and
stream mode, and a head trained on it through train, evaluate, predict, stream and export.

Uses ../shared/models and ../shared/media/real (skipped, naming the folder, where absent).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import real_video_paths, shared_model
from vidaction.cli import main

NAME = "movinet-a0-relu6-stream"
FILE = "movinet_a0_stream_kinetics600_int8.tflite"
FPS, SIZE = 5.0, 172  # the rate and size A0 was trained at; centre crop as Kinetics


@pytest.fixture(scope="module")
def official():
    return shared_model(FILE)


@pytest.fixture(scope="module")
def imported(official):
    """(clip model with the file's own 600-class head, its stream twin): built once."""
    from vidaction.models.stream import stream_model
    from vidaction.models.tflite_import import kinetics_model

    model = kinetics_model(official)
    return model, stream_model(model, NAME, SIZE)


@pytest.fixture(scope="module")
def real_clips(official):
    """(name, frames at 5 fps, the official file's logits per frame) per shared real clip:
    decoded and run once for both modes."""
    out = []
    for path in real_video_paths():
        frames = _frames_at_5fps(path)
        out.append((path.name, frames, _tflite_logits(official, frames)))
    return out


def _frames_at_5fps(path) -> np.ndarray:
    """Frames at 5 per second of video, centre-cropped to 172 px (uint8)."""
    from vidaction.data.sampling import center_crop
    from vidaction.io import VideoReader

    r = VideoReader(path)
    try:
        info = r.info
        n = max(1, int(info.duration * FPS + 1e-6))
        idx = sorted({min(info.frame_count - 1, int(round(k * info.fps / FPS)))
                      for k in range(n)})
        return np.stack(list(r.read(idx, transform=lambda f: center_crop(f, SIZE))))
    finally:
        r.close()


def _tflite_logits(official, frames: np.ndarray) -> np.ndarray:
    """The official file, one frame per call, its 43 states fed back; logits per frame."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(official), num_threads=2).get_signature_runner()
    specs = runner.get_input_details()
    states = {k: np.zeros(v["shape"], v["dtype"]) for k, v in specs.items() if k != "image"}
    assert len(states) == 43
    out = []
    for f in frames:
        got = runner(image=(f[None, None] / 255.0).astype(np.float32), **states)
        states = {k: got[k] for k in states}
        out.append(got["logits"][0])
    return np.stack(out)


def _top(z: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(-z)[:k])


def test_the_file_maps_one_to_one(official):
    from vidaction.models.tflite_import import read_tflite

    w = read_tflite(official)
    assert len(w.convs) == 64 and len(w.rezero) == 15
    assert sum(c.depthwise for c in w.convs) == 26
    assert w.image_shape == (1, 1, 172, 172, 3) and w.num_classes == 600
    head = [c for c in w.convs if c.path.startswith("classifier_head/")]
    assert [c.kernel.shape for c in head] == [(1, 1, 480, 2048), (1, 1, 2048, 600)]
    assert all(np.abs(c.bias).max() > 0 for c in head)  # real biases, not folded BN


def test_every_conv_reproduces_its_int8_op(official):
    """Each of the 64 dequantized kernels + biases, applied to the int8 op's own (dequantized)
    input, gives its output to within rounding to its output's quantization step: the
    mapping is exact; what differs at the logits is int8 activations."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from vidaction.models.tflite_import import read_tflite

    w = read_tflite(official)
    it = Interpreter(model_path=str(official), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=(
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    runner = it.get_signature_runner()
    feed = {k: np.zeros(v["shape"], v["dtype"])
            for k, v in runner.get_input_details().items()}
    feed["image"] = np.random.default_rng(0).uniform(0, 1, feed["image"].shape).astype(
        np.float32)
    runner(**feed)
    tensors = {d["index"]: d for d in it.get_tensor_details()}

    def deq(i):
        q = tensors[i]["quantization_parameters"]
        return (it.get_tensor(i).astype(np.float64) - q["zero_points"][0]) * q["scales"][0]

    convs = [op for op in it._get_ops_details()
             if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == len(w.convs)
    worst = 0.0
    for op, c in zip(convs, w.convs, strict=True):
        x, y = deq(op["inputs"][0]).astype(np.float32), deq(op["outputs"][0])
        strides = [1, 2 if x.shape[1] > y.shape[1] else 1, 2 if x.shape[2] > y.shape[2] else 1,
                   1]
        conv = tf.nn.depthwise_conv2d if c.depthwise else tf.nn.conv2d
        # the temporal convs read the stream buffer (frames in front): 'valid' in time
        z = conv(x, c.kernel, strides, "SAME").numpy()
        if z.shape != y.shape:
            z = conv(x, c.kernel, strides, "VALID").numpy()
        z = z + c.bias
        step = tensors[op["outputs"][0]]["quantization_parameters"]["scales"][0]
        # fused activation: none or ReLU6, whichever the op has
        err = min(np.abs(z - y).max(), np.abs(np.clip(z, 0, 6) - y).max()) / step
        worst = max(worst, err)
        assert err <= 0.6, f"{c.path}: off by {err:.2f} quantization steps"
    print(f"worst conv: {worst:.2f} output quantization steps")


def _agreement(a: np.ndarray, b: np.ndarray) -> dict:
    return {"top1_same": bool(a.argmax() == b.argmax()),
            "top5_common": len(set(_top(a, 5)) & set(_top(b, 5))),
            "max_abs_dlogit": float(np.abs(a - b).max()),
            "a_top1_rank_in_b": _top(b, 600).index(int(a.argmax())),
            "b_top1_rank_in_a": _top(a, 600).index(int(b.argmax()))}


@pytest.mark.parametrize("mode", ["clip", "stream"])
def test_keras_import_agrees_with_the_int8_file_on_real_clips(imported, real_clips, mode):
    """Every shared real clip at 5 fps: the Keras model on the whole clip (clip mode) or fed
    frame by frame through its stream twin (stream mode), against the official file fed
    frame by frame. Float against int8 activations: each one's top-1 is in the other's
    top 3 and 3 of 5 are shared everywhere; the per-clip figures are printed (-s)."""
    from vidaction.models.stream import KerasStreamer

    model, sm = imported
    rows = {}
    for name, frames, lite in real_clips:
        if mode == "clip":
            keras = model(frames[None], training=False).numpy()
        else:
            s = KerasStreamer(sm)
            keras = np.stack([s.step(f) for f in frames])
            # the stream twin is the clip model, frame by frame
            np.testing.assert_allclose(keras[-1], model(frames[None]).numpy()[0], atol=1e-3)
        rows[name] = {"frames": len(frames), **_agreement(keras[-1], lite[-1])}
    print(json.dumps({mode: rows}, indent=1))
    for name, r in rows.items():
        assert r["a_top1_rank_in_b"] < 3 and r["b_top1_rank_in_a"] < 3, (name, r)
        assert r["top5_common"] >= 3, (name, r)
        assert r["max_abs_dlogit"] < 8, (name, r)
    # the clear majority agree at top-1
    assert sum(r["top1_same"] for r in rows.values()) >= len(rows) / 2, rows


def test_float_architectures_refuse_the_file_and_train_picks_the_variant(official, tmp_path,
                                                                         capsys):
    from vidaction.errors import UserError
    from vidaction.models import create_model, model_info
    from vidaction.models.factory import format_model_table

    with pytest.raises(UserError, match="relu6-stream"):
        create_model("movinet-a0-stream", 3, frames=2, size=32, pretrained=str(official))
    assert model_info(NAME).pretrained
    row = next(ln for ln in format_model_table(with_params=False).splitlines()
               if ln.startswith(NAME + " "))
    assert "int8 deployment" in row
    not_tflite = tmp_path / "x.tflite"
    not_tflite.write_bytes(b"\0" * 64)
    with pytest.raises(UserError):
        create_model(NAME, 3, frames=2, size=32, pretrained=str(not_tflite))


def test_unfreeze_top_keeps_the_folded_batch_norm_in_inference_mode(official):
    import tensorflow as tf
    import tf_keras

    from vidaction.models import backbone_of, create_model, unfreeze_top_blocks

    model = create_model(NAME, 3, frames=2, size=32, pretrained=str(official))
    bns = [m for m in backbone_of(model).submodules
           if isinstance(m, tf_keras.layers.BatchNormalization)]
    assert bns and not any(b.trainable for b in bns)
    before = [b.moving_variance.numpy().copy() for b in bns]
    np.testing.assert_allclose(before[0], 1.0)
    variables = unfreeze_top_blocks(model, 1)
    assert variables and not any(b.trainable for b in bns)
    clips = np.random.default_rng(0).integers(0, 256, (2, 2, 32, 32, 3), dtype=np.uint8)
    opt = tf_keras.optimizers.Adam(1e-2)
    top = [v for v in model.trainable_variables if "block4_layer3" in v.name][0]
    top_before = top.numpy().copy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(clips, training=True) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    assert not np.allclose(top.numpy(), top_before)  # the top block trains
    for b, v in zip(bns, before, strict=True):  # the statistics do not move
        np.testing.assert_array_equal(b.moving_variance.numpy(), v)


def test_a_head_on_the_imported_backbone_trains_evaluates_predicts_streams_exports(
        official, data, tmp_path, capsys):
    """The reference recipe on real Kinetics features: frozen backbone (features cached),
    new head; then every command on the run. No --model: --pretrained PATH.tflite picks it."""
    from vidaction.models.litert import TFLiteRun

    run = tmp_path / "run"
    from vidaction.io import VIDEO_EXTENSIONS

    video = sorted(p for p in data.rglob("*") if p.suffix in VIDEO_EXTENSIONS)[0]
    assert main(["train", "--data", str(data), "--out", str(run), "--pretrained",
                 str(official), "--epochs", "1", "--frames", "4", "--size", "32",
                 "--frame-step", "3", "--batch-size", "4", "--no-progress",
                 "--feature-cache", str(tmp_path / "features")]) == 0
    out = capsys.readouterr().out
    assert NAME in out
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == NAME
    assert any((tmp_path / "features").rglob("*")), "the frozen backbone's features cached"
    assert main(["evaluate", str(run), "--clips", "1"]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), str(video), "--json", "--top-k", "2"]) == 0
    pred = json.loads(capsys.readouterr().out.splitlines()[0])
    assert pred
    assert main(["stream", str(run), str(video)]) == 0
    capsys.readouterr()
    lite = tmp_path / "head.tflite"
    assert main(["export", str(run), "--format", "tflite", "--quantize", "int8", "--out",
                 str(lite)]) == 0
    r = TFLiteRun(lite)
    assert r.stream and r.classes == config["classes"]
    # the ReLU6 / no-SE variant quantizes whole, as the official file (nothing kept float)
    assert r.config["export"]["int8_float_ops"] == []
    logits = r.predict_logits(np.zeros((1, 4, 32, 32, 3), np.uint8))
    assert logits.shape == (1, 3) and np.isfinite(logits).all()
