"""Keypoints of every frame of a video, from a pose model on LiteRT."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidaction.data.pose.joints import _family, joint_names
from vidaction.data.pose.weights import resolve_weights, weights_id
from vidaction.io import VideoReader, VideoReadError

# Joints below this score are left out of overlays (MoveNet's model card: 0.3 by default).
MIN_SCORE = 0.3
FORMAT = 1  # of the .keypoints.json / .npz files


@dataclass
class Keypoints:
    """Keypoints of one video. `points` (T, J, 3) float32: x, y in the pixels of the source
    frame (pixel centres at integers, as OpenCV draws), and a score in [0, 1]."""

    points: np.ndarray
    joints: tuple[str, ...]
    fps: float
    width: int
    height: int
    model: str
    tracked: bool = True
    weights_sha256: str = ""
    path: str = ""

    @property
    def frames(self) -> int:
        return int(self.points.shape[0])

    def mean_score(self) -> float:
        return float(self.points[..., 2].mean()) if self.points.size else 0.0

    def meta(self) -> dict:
        return {"format": FORMAT, "path": self.path, "model": self.model,
                "weights_sha256": self.weights_sha256, "tracked": self.tracked,
                "fps": self.fps, "width": self.width, "height": self.height,
                "frames": self.frames, "joints": list(self.joints)}

    def as_dict(self, decimals: int = 2) -> dict:
        """The JSON form: meta, then per frame per joint [x, y, score]."""
        pts = np.round(self.points.astype(np.float64), decimals)
        pts[..., 2] = np.round(self.points[..., 2], 4)
        return {**self.meta(), "keypoints": pts.tolist()}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))

    def to_npz(self) -> bytes:
        """`points` (T, J, 3) float32 and `meta` (the JSON meta as a string)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, points=self.points.astype(np.float32),
                            meta=np.array(json.dumps(self.meta())))
        return buf.getvalue()

    @classmethod
    def from_meta(cls, points: np.ndarray, meta: dict) -> Keypoints:
        return cls(np.asarray(points, np.float32), tuple(meta["joints"]), float(meta["fps"]),
                   int(meta["width"]), int(meta["height"]), meta["model"],
                   bool(meta.get("tracked", True)), meta.get("weights_sha256", ""),
                   meta.get("path", ""))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Keypoints:
        """Read a .keypoints.json or .npz written by `vidaction pose`."""
        p = Path(path)
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return cls.from_meta(z["points"], json.loads(str(z["meta"])))
        d = json.loads(p.read_text())
        pts = np.asarray(d.pop("keypoints"), np.float32).reshape(-1, len(d["joints"]), 3)
        return cls.from_meta(pts, d)


def _backend(model: str, files: dict[str, Path], track: bool, threads: int | None):
    if _family(model) == "movenet":
        from vidaction.data.pose.movenet import MoveNet, MoveNetTracker

        return MoveNetTracker(MoveNet(files["model"], threads), track)
    from vidaction.data.pose.blazepose import BlazePose, BlazePoseTracker

    return BlazePoseTracker(BlazePose(files["detector"], files["landmark"], threads), track)


class PoseTracker:
    """A pose model over consecutive frames of one video or stream: `step(frame)` takes an
    RGB uint8 (H, W, 3) frame and returns its (J, 3) keypoints; with `track`, the person's
    crop follows the previous frame's keypoints. `reset()` before an unrelated frame. Use
    one from one thread (each thread gets its own interpreters)."""

    def __init__(self, model: str = "movenet", weights=None, track: bool = True,
                 threads: int | None = None, cache_dir: str | os.PathLike | None = None):
        self.model = model
        self.joints = joint_names(model)
        self.track = track
        self.files = resolve_weights(model, weights, cache_dir)
        self.weights_sha256 = weights_id(self.files)
        self._impl = _backend(model, self.files, track, threads)

    def step(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype}"
                             f"{list(frame.shape)}")
        return self._impl.step(np.ascontiguousarray(frame))

    def reset(self) -> None:
        self._impl.reset()


def estimate_video(path: str | os.PathLike, model: str = "movenet", weights=None,
                   track: bool = True, progress: bool = False,
                   tracker: PoseTracker | None = None, threads: int | None = None,
                   cache_dir: str | os.PathLike | None = None) -> Keypoints:
    """Keypoints of every frame of `path`, decoded in order. A file cut short is an error
    (VideoReadError, one line), not half a result."""
    with VideoReader(path) as r:
        if r.truncated:
            raise VideoReadError(path, f"truncated: {r.truncated}")
        tracker = tracker or PoseTracker(model, weights, track, threads, cache_dir)
        tracker.reset()
        info = r.info
        from vidaction.progress import bar as progress_bar

        bar = progress_bar(total=info.frame_count, desc=f"pose {Path(path).name}",
                           unit="frame", enabled=progress)
        out = []
        try:
            for frame in r.iter_frames():
                out.append(tracker.step(frame))
                bar.update(1)
        finally:
            bar.close()
    if not out:
        raise VideoReadError(path, "zero frames: no frame could be decoded")
    pts = np.stack(out).astype(np.float32)
    return Keypoints(pts, tracker.joints, float(info.fps), int(info.width), int(info.height),
                     tracker.model, tracker.track, tracker.weights_sha256, str(path))
