"""Keypoint sequences for the skeleton models: time base, augmentation, window batches.

A skeleton model sees windows of `frames` keypoint sets at POSE_FPS (whatever the video's
rate: the built-in clips are 25 fps, a phone clip 30, the tutorial's jumping jacks 10), each
(17, 3) = x, y in source pixels and the estimator's score, COCO order (data.pose.JOINTS).
Body normalisation (hips to the origin, the torso as unit) happens inside the model, so a
saved or exported model takes raw keypoints and every caller feeds it the same thing.

Augmentations act on raw pixels, before the model normalises: a mirror (left/right joints
swapped and x negated, not when the classes hold a left/right pair), a small rotation and
scale about the hips, jitter proportional to the torso, and joint dropout (score 0, which
the model reads as "not seen").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSE_FPS = 10.0  # samples per second the skeleton models see
N_JOINTS = 17

# COCO order (data.pose.joints.JOINTS), kept here so this module needs no estimator.
_PAIRS = tuple((i, i + 1) for i in range(1, 17, 2))
MIRROR_INDEX = np.arange(N_JOINTS)
for _l, _r in _PAIRS:
    MIRROR_INDEX[_l], MIRROR_INDEX[_r] = _r, _l
HIPS, SHOULDERS = (11, 12), (5, 6)


def resample(points: np.ndarray, fps: float, to_fps: float = POSE_FPS) -> np.ndarray:
    """(T, J, 3) keypoints at `fps` -> the same span at `to_fps`, linearly interpolated (the
    score too). At least one sample; a span shorter than one output step gives its first."""
    points = np.asarray(points, np.float32)
    t = len(points)
    if t == 0:
        raise ValueError("no keypoints to resample")
    if not fps or fps <= 0 or abs(fps - to_fps) < 1e-6:
        return points.copy()
    n = max(1, int(np.floor((t - 1) / fps * to_fps + 1e-6)) + 1)
    src = np.arange(n) * (fps / to_fps)
    i0 = np.clip(np.floor(src).astype(int), 0, t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (src - i0).astype(np.float32)[:, None, None]
    return points[i0] * (1 - w) + points[i1] * w


def mirror(points: np.ndarray, width: float | None = None) -> np.ndarray:
    """Left and right swapped and x reflected (about the frame centre when `width` is given,
    else about x = 0): the same movement done by the mirror image of the person."""
    out = np.asarray(points, np.float32)[..., MIRROR_INDEX, :].copy()
    out[..., 0] = (width - 1 if width else 0.0) - out[..., 0]
    return out


def pad_window(points: np.ndarray, frames: int) -> np.ndarray:
    """A clip shorter than a window: repeat its last keypoints (a person holding still is
    what a short clip most likely continues as)."""
    if len(points) >= frames:
        return points
    return np.concatenate([points, np.repeat(points[-1:], frames - len(points), 0)])


def window_starts(n: int, frames: int, stride: int) -> list[int]:
    """Starts of the windows that cover n samples, the last one flush with the end."""
    if n <= frames:
        return [0]
    starts = list(range(0, n - frames + 1, max(1, stride)))
    if starts[-1] != n - frames:
        starts.append(n - frames)
    return starts


def windows(points: np.ndarray, frames: int, stride: int) -> np.ndarray:
    """(W, frames, J, 3): every window of a clip's resampled keypoints."""
    points = pad_window(points, frames)
    return np.stack([points[s:s + frames] for s in window_starts(len(points), frames, stride)])


@dataclass
class SkeletonAugment:
    """One draw per window; angles in degrees, sizes in torso lengths."""

    mirror: bool = True
    rotate: float = 8.0
    scale: float = 0.12
    jitter: float = 0.03
    dropout: float = 0.05  # chance a joint is lost in a frame
    tempo: float = 0.15  # window read this much faster or slower

    def __call__(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        w = np.array(window, np.float32, copy=True)
        if self.mirror and rng.random() < 0.5:
            w = mirror(w)
        hips = w[:, list(HIPS), :2].mean(axis=(0, 1))
        torso = max(_torso(w), 1e-3)
        a = np.radians(rng.uniform(-self.rotate, self.rotate))
        s = float(np.exp(rng.uniform(-self.scale, self.scale)))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32) * s
        w[..., :2] = (w[..., :2] - hips) @ rot.T + hips
        w[..., :2] += rng.normal(0, self.jitter * torso, w[..., :2].shape).astype(np.float32)
        if self.dropout:
            # a lost joint keeps where it was last seen, score 0 (as an estimator that
            # loses a wrist tends to leave it behind)
            lost = rng.random(w.shape[:2]) < self.dropout
            for t in np.flatnonzero(lost[1:].any(1)) + 1:
                w[t, lost[t], :2] = w[t - 1, lost[t], :2]
            w[..., 2][lost] = 0.0
        return w


def _torso(w: np.ndarray) -> float:
    """Median shoulder-to-hip distance of a (T, J, 3) window, in its units."""
    mid_s = w[:, list(SHOULDERS), :2].mean(1)
    mid_h = w[:, list(HIPS), :2].mean(1)
    return float(np.median(np.linalg.norm(mid_s - mid_h, axis=-1)))


def sample_window(points: np.ndarray, frames: int, rng: np.random.Generator | None,
                  augment: SkeletonAugment | None = None) -> np.ndarray:
    """One training window: a random start (rng) or the centre one (rng None); with
    augment, a random tempo too (read at 1 +- tempo of the rate)."""
    if rng is not None and augment is not None and augment.tempo:
        f = float(np.exp(rng.uniform(-augment.tempo, augment.tempo)))
        if abs(f - 1) > 1e-3:
            points = resample(points, POSE_FPS * f)
    points = pad_window(points, frames)
    n = len(points)
    start = (n - frames) // 2 if rng is None else int(rng.integers(0, n - frames + 1))
    w = points[start:start + frames]
    return augment(w, rng) if (augment is not None and rng is not None) else w.copy()


def batches(clips: list[np.ndarray], labels: np.ndarray, frames: int, batch_size: int,
            seed: int, augment: SkeletonAugment | None, training: bool):
    """tf.data of (windows (B, frames, 17, 3) float32, labels) over resampled keypoint clips.
    Training: each pass over it (each epoch) draws a new window and augmentation per clip,
    shuffled, from (seed, pass number); otherwise the centre window of each clip, in order."""
    import tensorflow as tf

    labels = np.asarray(labels, np.int64)
    passes = [0]

    def gen():
        rng = np.random.default_rng([seed, passes[0]]) if training else None
        passes[0] += 1
        order = rng.permutation(len(clips)) if training else np.arange(len(clips))
        for i in order:
            yield sample_window(clips[i], frames, rng, augment), labels[i]

    sig = (tf.TensorSpec((frames, N_JOINTS, 3), tf.float32), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(gen, output_signature=sig).batch(batch_size) \
        .prefetch(2)
