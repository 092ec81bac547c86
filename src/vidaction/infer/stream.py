"""True streaming: one frame at a time through a causal MoViNet, its state carried between calls
(the stream-mode model itself: vidaction.models.stream).

Sources: a file (PyAV, through `vidaction.io.VideoReader`), a camera index or a network URL
(OpenCV `VideoCapture`; network streams reconnect a few times with backoff before giving up).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidaction.errors import UserError
from vidaction.io import VideoReader, VideoReadError
from vidaction.models.scoring import softmax
from vidaction.models.stream import is_stream_config
from vidaction.progress import bar as progress_bar

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://",
                   "srt://")


def check_streamable(path: str | Path) -> None:
    """Refuse a run folder of a clip-only model from its config.json alone, before its
    model is loaded; .tflite exports are checked when opened (in milliseconds)."""
    import json

    from vidaction.models.kinetics import is_pretrained_name
    from vidaction.models.predictor import check_predictor_path

    check_predictor_path(path)  # a missing or wrong folder, before a camera opens
    if is_pretrained_name(path) or Path(path).suffix.lower() == ".tflite":
        return
    cfg = Path(path) / "config.json"
    try:
        config = json.loads(cfg.read_text())
    except ValueError:
        return
    from vidaction.models.pose_run import is_pose_config

    if not is_stream_config(config) and not is_pose_config(config):  # skeleton runs stream
        name = config.get("model", {}).get("name", "?")
        raise UserError(f"{path}: {name} is not a stream model; `stream` needs a "
                        "movinet-*-stream run (use `predict --timeline` for clip models)")


# --------------------------------------------------------------------------- sources


@dataclass
class SourceEnd:
    """Why a source stopped: `lost` when it stopped before its end (truncated file, camera
    gone, network stream lost for good), else it simply ended."""

    message: str
    lost: bool = False


class FileSource:
    """Every frame of a video file in order (flat memory); truncation ends it, not an error."""

    live = False

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.reader = VideoReader(self.path)  # raises VideoReadError with the reason
        self.fps = self.reader.info.fps or 25.0
        self.total: int | None = self.reader.frame_count
        self.end: SourceEnd | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        n = 0
        try:
            for frame in self.reader.iter_frames():
                n += 1
                yield frame
        except VideoReadError as e:
            self.end = SourceEnd(f"{self.path}: ended early after {n} frames ({e.reason})", True)
            return
        finally:
            self.reader.close()
        if self.reader.truncated or n < (self.total or 0):
            why = self.reader.truncated or f"{self.total} frames expected"
            self.end = SourceEnd(f"{self.path}: ended early after {n} frames ({why})", True)
        else:
            self.end = SourceEnd(f"end of {self.path} after {n} frames")


def _open_capture(target):
    import cv2

    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


class CaptureSource:
    """A camera (index) or network URL through OpenCV. Network streams that stop delivering
    are reopened up to `reconnects` times, waiting `backoff`, 2x`backoff`, ... in between;
    a successful frame resets the count."""

    live = True

    def __init__(self, spec: str, reconnects: int = 3, backoff: float = 1.0,
                 opener: Callable = _open_capture, log: Callable[[str], None] | None = None):
        self.spec = spec
        self.network = spec.lower().startswith(NETWORK_SCHEMES)
        self.target = int(spec) if spec.isdigit() else spec
        self.reconnects = reconnects
        self.backoff = backoff
        self.opener = opener
        self.log = log or (lambda msg: print(f"vidaction: {msg}", file=sys.stderr))
        self.end: SourceEnd | None = None
        self.cap = self.opener(self.target)
        tries = 0
        while self.cap is None and self.network and tries < reconnects:
            tries += 1
            self.log(f"{spec}: cannot open; retrying ({tries}/{reconnects})")
            time.sleep(backoff * 2 ** (tries - 1))
            self.cap = self.opener(self.target)
        if self.cap is None:
            what = "camera" if isinstance(self.target, int) else "source"
            raise VideoReadError(spec, f"cannot open {what}" + (
                f" (gave up after {reconnects} retries)" if self.network else ""))
        import cv2

        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 25.0
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        # A network file (HTTP MP4) has a frame count and ends; a live stream has none.
        self.total = count if count > 0 else None
        self.live = self.total is None

    def __iter__(self) -> Iterator[np.ndarray]:
        import cv2

        n = failures = 0
        try:
            while True:
                ok, frame = self.cap.read() if self.cap is not None else (False, None)
                if ok and frame is not None:
                    failures = 0
                    n += 1
                    yield _bgr_to_rgb(frame, cv2)
                    continue
                if self.total is not None and n >= self.total:
                    self.end = SourceEnd(f"end of {self.spec} after {n} frames")
                    return
                if not self.network:
                    what = "camera" if isinstance(self.target, int) else "source"
                    self.end = SourceEnd(f"{what} {self.spec} stopped delivering frames after "
                                         f"{n} frames", lost=True)
                    return
                if failures >= self.reconnects:
                    self.end = SourceEnd(f"{self.spec}: stream lost after {n} frames; gave up "
                                         f"after {self.reconnects} reconnects", lost=True)
                    return
                failures += 1
                self.log(f"{self.spec}: stream interrupted after {n} frames; reconnecting "
                         f"({failures}/{self.reconnects})")
                if self.cap is not None:
                    self.cap.release()
                time.sleep(self.backoff * 2 ** (failures - 1))
                self.cap = self.opener(self.target)
        finally:
            if self.cap is not None:
                self.cap.release()


def _bgr_to_rgb(frame: np.ndarray, cv2) -> np.ndarray:
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def open_source(spec: str, reconnects: int = 3, backoff: float = 1.0):
    """A file path, a camera index ("0") or a network URL (rtsp://, http://, ...)."""
    spec = str(spec)
    if spec.isdigit() or spec.lower().startswith(NETWORK_SCHEMES):
        return CaptureSource(spec, reconnects=reconnects, backoff=backoff)
    return FileSource(spec)


# --------------------------------------------------------------------------- the loop


@dataclass
class LabelChange:
    time: float  # seconds into the source (file time; wall time for live sources)
    frame: int
    label: str
    probability: float


@dataclass
class StreamResult:
    frames: int
    steps: int
    resets: int
    changes: list[LabelChange]
    end: SourceEnd
    seconds: float  # wall time spent
    model_seconds: float = 0.0  # in the model, after its first (warm-up) step
    build_seconds: float = 0.0  # making the streamer (a Keras run: tracing the graph)
    first_step_seconds: float = 0.0  # the first frame through the model (graph optimised)
    reset_every: int = 0  # model steps between state resets (0: never)
    warmup: int = 0  # steps after the start and each reset before a label may change

    @property
    def ms_per_step(self) -> float:
        """Model time per frame fed to it, the warm-up step left out."""
        return 1000 * self.model_seconds / (self.steps - 1) if self.steps > 1 else 0.0

    def ms_per_step_all(self, load_seconds: float = 0.0) -> float:
        """What each frame fed to the model really cost: loading (`load_seconds`, the
        caller's), building the streamer, the first frame and reading included."""
        total = load_seconds + self.build_seconds + self.seconds
        return 1000 * total / self.steps if self.steps else 0.0


def stream(predictor, source, *, every: int | None = None, reset_every: int | None = None,
           overlay: str | Path | None = None, progress: bool = True, top_k: int = 3,
           on_change: Callable[[LabelChange], None] | None = None,
           fps: float | None = None, warmup: int | None = None) -> StreamResult:
    """Run `predictor` (a Run or TFLiteRun of a stream model) over `source` frame by frame.

    `every`: feed one frame in `every` to the model (default: the run's frame_step, the
    spacing it was trained on); `reset_every`: clear the state after that many model steps
    (default: the run's frames per clip, so the label covers what a training clip covered;
    0: never, the pooled average then covers everything since the start). `on_change` is
    called whenever the top-1 label changes. Nothing accumulates per frame: memory stays flat.
    `warmup`: steps the state must have seen, after the start and after each reset, before
    the label may change (default max(2, reset_every // 4), from the run's frames per clip
    when resets are off): an average of 1-3 frames is noise, often confidently wrong, so
    until then nothing is announced and the overlay keeps the previous label (none yet at
    the start).
    `fps`: feed that many frames per second of the source instead (one in round(source fps /
    fps)); a run sampled by rate (the pretrained `kinetics600`: 5 fps) streams at its rate.
    """
    from vidaction.data.sampling import fit_frame, frame_step_for
    from vidaction.models.run import Run

    config = predictor.config
    name = config.get("model", {}).get("name", "?")
    from vidaction.models.pose_run import is_pose_config

    if isinstance(predictor, Run) and progress and not is_pose_config(config):
        # a .tflite has its step function already; a skeleton run needs none
        print(f"vidaction: building the {name} stream model (the first build traces the "
              "graph: about 40 s on a CPU) ...", file=sys.stderr, flush=True)
    t_build = time.perf_counter()
    streamer = predictor.streamer()
    build_s = time.perf_counter() - t_build
    if streamer is None:
        raise UserError(f"{name} is not a stream model: `stream` needs a movinet-*-stream run "
                        "(use `predict --timeline` for clip models)")
    if isinstance(source, str | Path):
        source = open_source(str(source))
    raw = getattr(streamer, "raw_frames", False)  # skeleton runs: the pose model fits it
    size = int(config["model"]["size"])
    resize = config.get("sampling", {}).get("resize", "letterbox")
    if every and fps:
        raise UserError("--fps and --frame-step exclude each other")
    if not every:  # --fps, else the run's own rate, else its frame step
        every = frame_step_for(source.fps, fps or config.get("sampling", {}).get("fps"))
    if raw:  # skeleton runs: the pose on every frame (the streamer resamples to its rate)
        every = every or 1
    every = every or int(config.get("sampling", {}).get("frame_step", 1)) or 1
    if raw:
        streamer.fps = (source.fps or 25.0) / every
    if reset_every is None and raw:  # a sliding window of keypoints: nothing to clear
        reset_every = 0
    if reset_every is None:  # a training clip's length: the span the model learnt to label
        reset_every = int(config.get("sampling", {}).get("n_frames")
                          or config.get("model", {}).get("frames") or 0)
    if every < 1 or reset_every < 0:
        raise UserError("--frame-step must be at least 1 and --reset-every at least 0")
    if warmup is None:
        span = reset_every or int(config.get("sampling", {}).get("n_frames")
                                  or config.get("model", {}).get("frames") or 0)
        warmup = max(2, span // 4)
    classes = list(predictor.classes)
    changes: list[LabelChange] = []
    top: list[tuple[str, float]] = []
    current = None
    last = None  # (logits, frame) of the latest step
    frames = steps = resets = since_reset = 0

    def _announce(logits, i: int, current: str | None) -> tuple[list, str | None]:
        probs = softmax(logits)
        top = [(classes[k], float(probs[k])) for k in np.argsort(-probs)[:top_k]]
        if top[0][0] != current:
            t = (time.perf_counter() - start) if source.live else i / source.fps
            change = LabelChange(t, i, top[0][0], top[0][1])
            changes.append(change)
            if on_change is not None:
                on_change(change)
        return top, top[0][0]

    model_s = first_s = 0.0
    start = time.perf_counter()
    with ExitStack() as stack:
        writer = None
        if overlay is not None:
            from vidaction.infer.overlay import VIDEO_MAX_SIDE, OverlayWriter, _shrink, draw_label

            writer = stack.enter_context(OverlayWriter(overlay, source.fps))
        bar = stack.enter_context(progress_bar(total=source.total, unit="frame",
                                               enabled=progress, desc="stream"))
        end = None
        try:
            for frame in source:
                i = frames
                frames += 1
                if i % every == 0:
                    if reset_every and since_reset >= reset_every:
                        streamer.reset()
                        since_reset = 0
                        resets += 1
                    t0 = time.perf_counter()
                    logits = streamer.step(frame if raw else fit_frame(frame, size, resize))
                    if steps:  # the first call also optimises the graph: seconds
                        model_s += time.perf_counter() - t0
                    else:
                        first_s = time.perf_counter() - t0
                    steps += 1
                    since_reset += 1
                    last = (logits, i)
                    if since_reset >= warmup:  # fewer frames are noise: the label stays
                        top, current = _announce(logits, i, current)
                if writer is not None:
                    writer.write(draw_label(_shrink(frame, VIDEO_MAX_SIDE), top))
                bar.update(1)
        except KeyboardInterrupt:  # how a live stream is stopped: keep what was done
            end = SourceEnd(f"interrupted after {frames} frames")
    if current is None and last is not None:  # shorter than the warm-up: one label, at the end
        _announce(*last, current)
    end = end or source.end or SourceEnd(f"end of {getattr(source, 'spec', source)} after "
                                         f"{frames} frames")
    return StreamResult(frames, steps, resets, changes, end, time.perf_counter() - start,
                        model_s, build_s, first_s, reset_every, warmup)


def stream_command(run: str, video: str | None, source: str | None, *,
                   frame_step: int | None = None, reset_every: int | None = None,
                   overlay: str | None = None, force: bool = False, reconnects: int = 3,
                   weights: str | None = None, fps: float | None = None,
                   progress: bool = True) -> int:
    """`vidaction stream`: label changes on stdout, one summary line on stderr. Refusals
    come before the model loads (seconds) or a camera opens. Exit 3: a live source lost."""
    from vidaction.models.predictor import load_predictor

    if (video is None) == (source is None):
        raise UserError("give a video file, or --source for a camera or URL (not both)")
    check_streamable(run)
    if overlay:
        from vidaction.io.writer import refuse_existing

        refuse_existing([overlay], force)  # the one overwrite rule
    src = open_source(video or source, reconnects=reconnects)
    t0 = time.perf_counter()
    if progress:  # TensorFlow and the weights: seconds of silence otherwise
        print(f"vidaction: loading model {run} ...", file=sys.stderr, flush=True)
    predictor = load_predictor(run, weights=weights)
    load_s = time.perf_counter() - t0

    def show(c: LabelChange) -> None:
        from vidaction.progress import write  # above the progress bar, not through it

        write(f"{c.time:9.2f}s  frame {c.frame:>7}  {c.label}  {c.probability:.1%}",
              file=sys.stdout)

    result = stream(predictor, src, every=frame_step, reset_every=reset_every,
                    overlay=overlay, progress=progress, on_change=show, fps=fps)
    print(f"vidaction: {result.end.message}; {result.steps} frames through the model, "
          f"{result.ms_per_step:.1f} ms each after the first; "
          f"{result.ms_per_step_all(load_s):.1f} ms each all told (model load {load_s:.1f} s, "
          f"stream build {result.build_seconds:.1f} s, first frame "
          f"{result.first_step_seconds:.1f} s included)"
          + (f"; state reset every {result.reset_every} frames fed"
             if result.reset_every else "; state never reset"), file=sys.stderr)
    if overlay:
        print(f"overlay written to {overlay}", file=sys.stderr)
    return 3 if result.end.lost else 0
