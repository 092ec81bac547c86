"""Streaming: a stream MoViNet fed frame by frame equals the clip model; sources end cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidaction.cli import main
from vidaction.errors import UserError
from vidaction.io import VideoReadError

T, S = 8, 64
CLASSES = ["clap", "sit_down", "stand_up"]


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A random-init movinet-a0-stream laid out like a run, with a tiny rendered data set for
    int8 calibration and test videos (the MoViNet is built once per module: 15-30 s)."""
    from vidaction.data.builtin import render_dataset
    from vidaction.data.sampling import SamplingConfig
    from vidaction.models import create_model, save_model
    from vidaction.models.run import Run

    root = tmp_path_factory.mktemp("streamrun")
    data = render_dataset(root / "data", classes=CLASSES, clips_per_class=2, size=S,
                          seconds=0.8, fps=25, seed=3, splits=(0.5, 0.0, 0.5), progress=False)
    path = root / "run"
    model = create_model("movinet-a0-stream", len(CLASSES), frames=T, size=S)
    save_model(model, path / "model")
    config = {"model": {"name": "movinet-a0-stream", "frames": T, "size": S,
                        "pretrained": "none", "num_classes": len(CLASSES)},
              "sampling": SamplingConfig(T, 1, S).as_dict(), "classes": CLASSES,
              "train": {"data": str(data), "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
              "dataset": {"root": str(data)}}
    (path / "config.json").write_text(json.dumps(config))
    (path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return Run(path, model, CLASSES, config)


@pytest.fixture(scope="module")
def test_videos(stream_run):
    from vidaction.data.sources import load_dataset

    data = stream_run.config["dataset"]["root"]
    return [c.path for c in load_dataset(data, write_classes_file=False).split("test")]


@pytest.fixture(scope="module")
def tflite_float(stream_run, tmp_path_factory):
    from vidaction.export import export_run

    out = tmp_path_factory.mktemp("tfl") / "a0 stream.tflite"
    return export_run(stream_run, "tflite", out, progress=False)


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    from vidaction.models import create_model
    from vidaction.models.run import Run

    path = tmp_path_factory.mktemp("cliprun") / "run"
    path.mkdir()
    config = {"model": {"name": "r2plus1d", "frames": 4, "size": 32, "num_classes": 3},
              "sampling": {"n_frames": 4, "frame_step": 1, "size": 32}, "classes": CLASSES}
    (path / "config.json").write_text(json.dumps(config))
    return Run(path, create_model("r2plus1d", 3, frames=4, size=32), CLASSES, config)


def _clip(seed: int, frames: int = T) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth random content (a random field upsampled) rather than pure noise.
    small = rng.integers(0, 256, (frames, 8, 8, 3)).astype(np.uint8)
    return np.repeat(np.repeat(small, S // 8, axis=1), S // 8, axis=2)


def test_stream_frame_by_frame_equals_the_whole_clip(stream_run):
    streamer = stream_run.streamer()
    for seed in (0, 1):
        clip = _clip(seed)
        want = stream_run.predict_logits(clip[None])[0]
        streamer.reset()
        steps = [streamer.step(frame) for frame in clip]
        np.testing.assert_allclose(steps[-1], want, atol=1e-5, rtol=0)
        assert not np.allclose(steps[-1], steps[0], atol=1e-4)  # the state carried something


def test_reset_forgets_and_streamers_keep_their_own_state(stream_run):
    a, b = stream_run.streamer(), stream_run.streamer()
    clip, other = _clip(2), _clip(3)
    for frame in other:
        a.step(frame)
    a.reset()
    got_a = [a.step(f) for f in clip][-1]
    got_b = [b.step(f) for f in clip][-1]
    np.testing.assert_allclose(got_a, got_b, atol=1e-6)
    with pytest.raises(ValueError, match="64, 64, 3"):
        a.step(np.zeros((32, 32, 3), np.uint8))


def test_clip_models_have_no_streamer(clip_run, tmp_path):
    from vidaction.infer.stream import check_streamable, stream

    assert clip_run.streamer() is None
    with pytest.raises(UserError, match="not a stream model"):
        stream(clip_run, tmp_path / "none.mp4")
    with pytest.raises(UserError, match="r2plus1d is not a stream model"):
        check_streamable(clip_run.path)


def _video(path, n, size=48, seed=0):
    from vidaction.io import write_video

    frames = [_clip(seed + i, 1)[0][:size, :size] for i in range(n)]
    return write_video(path, frames, fps=25)


def test_stream_a_file_prints_changes_and_resets(stream_run, tmp_path):
    from vidaction.infer.stream import open_source, stream

    path = _video(tmp_path / "v.mp4", 24)
    seen = []
    res = stream(stream_run, open_source(path), every=1, reset_every=8, progress=False,
                 on_change=seen.append)
    assert (res.frames, res.steps, res.resets) == (24, 24, 2)
    assert not res.end.lost and "after 24 frames" in res.end.message
    assert res.warmup == 2  # max(2, 8 // 4): the first label once two frames are in
    assert seen and seen == res.changes and seen[0].frame == 1
    assert all(0 < c.probability <= 1 and c.label in CLASSES for c in seen)
    assert [c.time for c in seen] == [c.frame / 25 for c in seen]

    # --reset-every 8: the label at frame 15 is that of frames 8..15 streamed afresh
    from vidaction.data.sampling import fit_frame
    from vidaction.io import read_frames

    frames = [fit_frame(f, S, "letterbox") for f in read_frames(path)]
    fresh = stream_run.streamer()
    logits = [fresh.step(f) for f in frames[8:16]][-1]
    tracked = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def reset(self):
            self.inner.reset()

        def step(self, frame):
            tracked.append(self.inner.step(frame))
            return tracked[-1]

    class Wrapped:
        classes, config = stream_run.classes, stream_run.config

        def streamer(self):
            return Spy(stream_run.streamer())

    stream(Wrapped(), open_source(path), every=1, reset_every=8, progress=False)
    np.testing.assert_allclose(tracked[15], logits, atol=1e-5)
    # every 3rd frame only
    res3 = stream(stream_run, open_source(path), every=3, progress=False)
    assert (res3.frames, res3.steps, res3.resets) == (24, 8, 0)


def test_stream_overlay_writes_every_frame(stream_run, tmp_path):
    from vidaction.infer.stream import stream
    from vidaction.io import probe

    path = _video(tmp_path / "v.mp4", 10)
    res = stream(stream_run, path, every=2, overlay=tmp_path / "out.mp4", progress=False)
    assert res.frames == 10 and probe(tmp_path / "out.mp4").frame_count == 10


def test_a_file_that_ends_early_ends_cleanly(stream_run, tmp_path):
    from vidaction.infer.stream import open_source, stream

    full = _video(tmp_path / "full.mkv", 60)
    cut = tmp_path / "cut.mkv"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    res = stream(stream_run, open_source(cut), every=4, progress=False)
    assert 0 < res.frames < 60
    assert res.end.lost and "ended early" in res.end.message and str(cut) in res.end.message


def test_stream_cli_bad_sources_one_line_exit_1(stream_run, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    for source, why in [(tmp_path / "missing.mp4", "missing"), (text, "not a video")]:
        code = main(["stream", str(stream_run.path), "--source", str(source), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1, err
        assert str(source) in err[0] and why in err[0] and "Traceback" not in err[0]


def test_stream_cli_on_a_clip_run_refuses_before_loading(clip_run, tmp_path, capsys):
    video = _video(tmp_path / "v.mp4", 4)
    assert main(["stream", str(clip_run.path), "--source", str(video)]) == 1
    assert "not a stream model" in capsys.readouterr().err


class FakeCapture:
    """Delivers `counts[k]` frames on the k-th opening, then read() fails."""

    def __init__(self, n):
        self.n = n

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        if self.n <= 0:
            return False, None
        self.n -= 1
        return True, np.zeros((20, 30, 3), np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_network_source_reconnects_with_backoff_then_gives_up(monkeypatch):
    from vidaction.infer import stream as st

    counts = iter([5, 0, 3])  # first connection 5 frames, a failed reconnect, then 3
    opened, naps, logs = [], [], []

    def opener(target):
        opened.append(target)
        n = next(counts, None)
        return FakeCapture(n) if n is not None else None

    monkeypatch.setattr(st.time, "sleep", naps.append)
    src = st.CaptureSource("rtsp://127.0.0.1:9/live", reconnects=2, backoff=0.5,
                           opener=opener, log=logs.append)
    frames = list(src)
    assert len(frames) == 8 and frames[0].shape == (20, 30, 3)
    # 5 frames; retry 1 opens a dead stream, retry 2 gets 3 more (the count restarts);
    # then two more failed retries and it gives up
    assert naps == [0.5, 1.0, 0.5, 1.0]
    assert src.end.lost and "gave up after 2 reconnects" in src.end.message
    assert len(logs) == 4 and all("reconnecting" in m for m in logs)


def test_network_source_that_never_opens_and_camera_loss():
    from vidaction.infer import stream as st

    with pytest.raises(VideoReadError, match="cannot open source"):
        st.CaptureSource("http://127.0.0.1:9/x.mjpg", reconnects=1, backoff=0.0,
                         opener=lambda t: None, log=lambda m: None)
    cam = st.CaptureSource("0", opener=lambda t: FakeCapture(2))
    assert len(list(cam)) == 2
    assert cam.end.lost and "camera 0 stopped" in cam.end.message


# --------------------------------------------------------------------------- TFLite


def _agree_top1(want: np.ndarray, got: np.ndarray, margin: float = 1e-3) -> None:
    """Same top-1 wherever the Keras logits are not tied (random weights give close ones)."""
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > margin
    assert clear.any()
    assert (want.argmax(1) == got.argmax(1))[clear].all()


def test_tflite_stream_export_equals_the_keras_clip(stream_run, tflite_float):
    from vidaction.models.litert import TFLiteRun

    assert tflite_float.with_suffix(".labels.txt").read_text().split() == CLASSES
    config = json.loads(tflite_float.with_suffix(".json").read_text())
    assert config["export"]["stream"] and config["model"]["name"] == "movinet-a0-stream"
    assert len(config["export"]["state_names"]) > 10

    lite = TFLiteRun(tflite_float)
    assert lite.classes == CLASSES and lite.config["sampling"]["n_frames"] == T
    batch = np.stack([_clip(seed) for seed in range(4)])
    want = stream_run.predict_logits(batch)
    streamer = lite.streamer()
    for clip, w in zip(batch[:2], want[:2], strict=True):
        streamer.reset()
        for frame in clip:
            got = streamer.step(frame)
        np.testing.assert_allclose(got, w, atol=1e-4, rtol=0)
    got = lite.predict_logits(batch)  # frame by frame inside, a fresh state per clip
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    _agree_top1(want, got)


def test_predict_and_stream_take_the_tflite(stream_run, tflite_float, test_videos, capsys):
    from vidaction.infer.predict import predict_video
    from vidaction.models.predictor import load_predictor, sampling_config

    lite = load_predictor(tflite_float)
    cfg = sampling_config(lite)
    keras = np.stack([predict_video(stream_run, p, cfg, 1).probs for p in test_videos])
    tfl = np.stack([predict_video(lite, p, cfg, 1).probs for p in test_videos])
    np.testing.assert_allclose(tfl, keras, atol=1e-4)
    _agree_top1(np.log(keras), np.log(tfl), margin=1e-4)

    code = main(["stream", str(tflite_float), "--source", str(test_videos[0]), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0 and "end of" in err
    assert out.split()[3] in CLASSES  # "   0.00s  frame  0  LABEL  0.42"


def test_int8_stream_export_calibrates_on_training_clips(stream_run, tflite_float, tmp_path):
    from vidaction.export import export_run
    from vidaction.models.litert import TFLiteRun

    out = export_run(stream_run, "tflite", tmp_path / "q.tflite", quantize="int8",
                     progress=False)
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["export"]["quantize"] == "int8" and config["export"]["calibration_clips"] == 3
    assert out.stat().st_size < tflite_float.stat().st_size / 2
    batch = np.stack([_clip(seed) for seed in range(4)])
    got = TFLiteRun(out).predict_logits(batch)
    want = stream_run.predict_logits(batch)
    assert got.shape == want.shape and np.isfinite(got).all()
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    print(f"int8 top-1 agreement with Keras: {agree:.2f} on {len(want)} clips, "
          f"max |logit diff| {np.abs(got - want).max():.3f}")


def test_stream_resets_every_clip_length_unless_told(stream_run, tmp_path):
    from vidaction.infer.stream import open_source, stream

    path = _video(tmp_path / "v.mp4", 20)
    res = stream(stream_run, open_source(path), every=1, progress=False)
    # the run's clips are T frames: the state is cleared before steps T+1 and 2T+1
    assert (res.steps, res.reset_every, res.resets) == (20, T, 2)
    never = stream(stream_run, open_source(path), every=1, reset_every=0, progress=False)
    assert (never.reset_every, never.resets) == (0, 0)


def test_stream_cli_says_what_is_slow_and_what_it_all_cost(stream_run, tmp_path, capsys):
    video = _video(tmp_path / "v.mp4", 12)
    assert main(["stream", str(stream_run.path), str(video), "--frame-step", "1"]) == 0
    err = capsys.readouterr().err
    assert f"loading model {stream_run.path}" in err
    assert "building the movinet-a0-stream stream model" in err
    (summary,) = [ln for ln in err.splitlines() if "frames through the model" in ln]
    assert "12 frames through the model" in summary and "ms each after the first" in summary
    assert "all told (model load" in summary and f"state reset every {T} frames" in summary
    # the overlay rule: an existing file is refused before the model loads, --force replaces
    out = tmp_path / "o.mp4"
    out.write_bytes(b"mine")
    assert main(["stream", str(stream_run.path), str(video), "--overlay", str(out)]) == 1
    assert "o.mp4 already exists; --force replaces it" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"
    assert main(["stream", str(stream_run.path), str(video), "--overlay", str(out), "--force",
                 "--no-progress"]) == 0
    assert out.read_bytes() != b"mine"


def test_stream_cli_takes_a_positional_video_and_frame_step(stream_run, tmp_path, capsys):
    video = _video(tmp_path / "v.mp4", 12)
    assert main(["stream", str(stream_run.path), str(video), "--frame-step", "3",
                 "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "4 frames through the model" in err
    assert out.strip() and all(line.rstrip().endswith("%") for line in out.splitlines())
    assert main(["stream", str(stream_run.path), str(video), "--every", "4",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "--every is deprecated; use --frame-step" in err and "3 frames through" in err


# --------------------------------------------------------------------------- warm-up (fakes)


class ScriptedStreamer:
    """Top-1 class per step from `script` (indices into CLASSES); counts its resets."""

    def __init__(self, script):
        self.script, self.n, self.resets = list(script), 0, 0

    def reset(self):
        self.resets += 1

    def step(self, frame):
        logits = np.zeros(len(CLASSES), np.float32)
        logits[self.script[self.n]] = 4.0  # confident: ~96%, as the noise labels were
        self.n += 1
        return logits


class FakeSource:
    """`n` tiny frames from a file-like source at 25 fps."""

    live, fps, end = False, 25.0, None

    def __init__(self, n):
        self.total = n

    def __iter__(self):
        return iter(np.zeros((self.total, 8, 8, 3), np.uint8))


def _scripted(script, frames=T):
    class Scripted:
        classes = CLASSES
        config = {"model": {"name": "fake-stream", "size": 8},
                  "sampling": {"n_frames": frames, "frame_step": 1, "size": 8}}

        def streamer(self):
            return ScriptedStreamer(script)

    return Scripted()


def test_a_label_right_after_a_reset_waits_for_the_warm_up(monkeypatch):
    from vidaction.infer import overlay as ov
    from vidaction.infer.stream import stream

    shown = []  # the overlay's label on every frame

    class NoWriter:
        def __init__(self, path, fps):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, frame):
            pass

    monkeypatch.setattr(ov, "OverlayWriter", NoWriter)
    monkeypatch.setattr(ov, "draw_label", lambda frame, top: shown.append(top[0][0] if top
                                                                          else None))
    # clips of 8 frames: a reset before steps 8 and 16, a warm-up of max(2, 8 // 4) = 2
    # steps. 0: noise, 1-7: clap; 8: noise (fresh state), 9-12: clap, 13-: stand_up
    script = [1] + [0] * 7 + [2] + [0] * 4 + [2] * 7
    seen = []
    res = stream(_scripted(script), FakeSource(len(script)), every=1, overlay="unused.mp4",
                 progress=False, on_change=seen.append)
    assert (res.steps, res.resets, res.reset_every, res.warmup) == (20, 2, T, 2)
    assert [(c.frame, c.label) for c in seen] == [(1, "clap"), (13, "stand_up")]
    assert seen == res.changes
    # nothing drawn before the first label; clap kept through the reset's noise frame
    assert shown == [None] + ["clap"] * 12 + ["stand_up"] * 7
    # after the second reset (step 16) stand_up is the label again: nothing new announced


def test_warm_up_default_follows_the_reset_and_zero_still_never_resets():
    from vidaction.infer.stream import stream

    script = [1] * 3 + [0] * 37
    # resets every 40: a warm-up of 10 steps; the noise on steps 0-2 is never announced
    res = stream(_scripted(script, frames=40), FakeSource(40), every=1, progress=False)
    assert (res.warmup, res.resets) == (10, 0)
    assert [(c.frame, c.label) for c in res.changes] == [(9, "clap")]
    # --reset-every 0: never reset, the start's warm-up from the run's frames per clip
    never = stream(_scripted(script, frames=16), FakeSource(40), every=1, reset_every=0,
                   progress=False)
    assert (never.reset_every, never.resets, never.warmup) == (0, 0, 4)
    assert [(c.frame, c.label) for c in never.changes] == [(3, "clap")]
    # warmup=1: every step counts, the noise label on frame 0 is announced as before
    raw = stream(_scripted(script), FakeSource(40), every=1, progress=False, warmup=1)
    assert [c.label for c in raw.changes][:2] == ["sit_down", "clap"]


def test_a_source_shorter_than_the_warm_up_still_gets_its_label_at_the_end():
    from vidaction.infer.stream import stream

    seen = []
    res = stream(_scripted([2, 2, 1]), FakeSource(3), every=1, reset_every=40,
                 progress=False, on_change=seen.append)
    assert res.warmup == 10 and res.steps == 3
    assert [(c.frame, c.label) for c in seen] == [(2, CLASSES[1])]  # the last step's label
