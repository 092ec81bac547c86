"""Skeleton runs (pose-stats, pose-tcn): from a video to the windows their model reads.

A skeleton run's config.json holds a "pose" section: which estimator made its keypoints
(and its weights, if given by path), whether the crop was tracked, the rate and window.
Every user of the run (evaluate, predict, --timeline, stream) gets its keypoints here, from
the same estimator through the keypoint cache, so training and use see the same thing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence

import numpy as np

from vidaction.data.skeleton import POSE_FPS, pad_window, resample, window_starts
from vidaction.errors import UserError

DEFAULT_STRIDE = 5  # pose samples between the windows of one video (0.5 s)


def is_pose_config(config: dict | None) -> bool:
    """Whether a run (or export) config describes a skeleton model."""
    config = config or {}
    return bool(config.get("pose")) or str(
        (config.get("model") or {}).get("name", "")).startswith("pose-")


def pose_settings(config: dict) -> dict:
    """The run's pose section with defaults filled in."""
    p = dict(config.get("pose") or {})
    frames = int((config.get("model") or {}).get("frames") or p.get("frames") or 24)
    return {"model": p.get("model", "movenet"), "weights": p.get("weights"),
            "track": bool(p.get("track", True)), "fps": float(p.get("fps", POSE_FPS)),
            "frames": frames, "stride": int(p.get("stride", DEFAULT_STRIDE))}


def video_keypoints(path: str | os.PathLike, settings: dict, cache_dir=None,
                    progress: bool = False, weights_cache_dir=None):
    """The cached keypoints of one video (data.pose.Keypoints)."""
    from vidaction.data.pose import cached_keypoints

    return cached_keypoints(path, model=settings["model"], weights=settings["weights"],
                            cache_dir=cache_dir, track=settings["track"], progress=progress,
                            weights_cache_dir=weights_cache_dir)


def samples(kp, settings: dict) -> np.ndarray:
    """A video's keypoints at the skeleton rate, COCO-17 order."""
    from vidaction.data.pose import to_coco17

    if kp.points is None or len(kp.points) == 0:
        raise UserError(f"{kp.path}: no frames to estimate a pose on")
    fps = kp.fps if kp.fps and kp.fps > 0 else 25.0
    return resample(to_coco17(kp.points, settings["model"]), fps, settings["fps"])


def eval_windows(s: np.ndarray, frames: int, k: int) -> np.ndarray:
    """k evenly spaced windows (k, frames, 17, 3); k=1 is the centre one (what training
    validates on)."""
    s = pad_window(s, frames)
    n = len(s) - frames
    starts = [n // 2] if k <= 1 else np.linspace(0, n, k).round().astype(int).tolist()
    return np.stack([s[a:a + frames] for a in starts])


def all_windows(s: np.ndarray, frames: int, stride: int) -> tuple[np.ndarray, list[int]]:
    """Every window over a video's samples and their starts (samples)."""
    s = pad_window(s, frames)
    starts = window_starts(len(s), frames, stride)
    return np.stack([s[a:a + frames] for a in starts]), starts


def load_keypoint_windows(paths: Sequence[str | os.PathLike], config: dict,
                          clips: int = 3) -> Iterator:
    """As models.scoring.load_videos, for a skeleton run: per video `clips` evenly spaced
    keypoint windows, or its reason when it cannot be read. The estimator is opened first,
    so missing weights are one line for the whole command, not one per video."""
    from vidaction.data.pose import PoseTracker, cached_keypoints
    from vidaction.io import VideoReadError
    from vidaction.models.scoring import Loaded

    settings = pose_settings(config)
    tracker = PoseTracker(settings["model"], settings["weights"], settings["track"])
    for i, p in enumerate(paths):
        path = str(p)
        try:
            kp = cached_keypoints(path, tracker=tracker)
            yield Loaded(i, path, eval_windows(samples(kp, settings), settings["frames"],
                                               clips))
        except VideoReadError as e:
            yield Loaded(i, path, None, e.reason)
        except UserError as e:
            yield Loaded(i, path, None, str(e))
        except OSError as e:
            yield Loaded(i, path, None, e.strerror or str(e))
        except Exception as e:  # noqa: BLE001 - one broken file must not end an evaluation
            yield Loaded(i, path, None, f"{type(e).__name__}: {e}")


def keras_logits(model):
    """A Keras skeleton model as a traced function of one window batch: a stream calls it
    on every frame, and an eager call costs ~100 ms where the traced one costs ~1 ms."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda windows: fn(tf.convert_to_tensor(windows, tf.float32)).numpy()


class PoseStreamer:
    """`stream` for a skeleton run: the pose estimator on every frame given, the classifier
    over the last window of keypoints resampled to the run's rate.

    The resampling is the offline one done incrementally (sample n at source time n / rate,
    interpolated between the two frames around it), so after any frame the logits equal the
    model's on the last window of `resample(keypoints so far)`. Set `fps` to the source's
    frame rate before the first step (`stream` does)."""

    raw_frames = True  # wants the source frame itself, not one fitted to the model's size

    def __init__(self, predict_logits, settings: dict, tracker=None):
        self.predict_logits = predict_logits
        self.settings = settings
        self.frames = settings["frames"]
        self.fps = 25.0
        self.tracker = tracker
        self.pose_seconds = 0.0
        self.reset()

    def reset(self) -> None:
        self._i = -1
        self._prev: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._next = 0  # next output sample
        self._buf: list[np.ndarray] = []
        if self.tracker is not None:
            self.tracker.reset()

    def _tracker(self):
        if self.tracker is None:
            from vidaction.data.pose import PoseTracker

            self.tracker = PoseTracker(self.settings["model"], self.settings["weights"],
                                       self.settings["track"])
        return self.tracker

    def push_keypoints(self, kp: np.ndarray) -> None:
        """Feed one frame's (17, 3) keypoints (the estimator already run)."""
        from vidaction.data.pose import to_coco17

        kp = to_coco17(np.asarray(kp, np.float32), self.settings["model"])
        self._i += 1
        self._prev, self._last = self._last, kp
        ratio = self.fps / self.settings["fps"] if self.fps > 0 else 1.0
        while True:
            src = self._next * ratio
            i0 = int(np.floor(src))
            if i0 > self._i or (src > i0 and i0 + 1 > self._i):
                break
            if i0 == self._i:
                sample = self._last
            else:  # i0 == self._i - 1, between the previous frame and this one
                w = np.float32(src - i0)
                sample = self._prev * (1 - w) + self._last * w
            self._buf.append(sample)
            self._next += 1
        del self._buf[:-self.frames]

    def logits(self) -> np.ndarray:
        window = pad_window(np.stack(self._buf), self.frames)
        return np.asarray(self.predict_logits(window[None]))[0]

    def step(self, frame: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        kp = self._tracker().step(frame)
        self.pose_seconds += time.perf_counter() - t0
        self.push_keypoints(kp)
        return self.logits()
