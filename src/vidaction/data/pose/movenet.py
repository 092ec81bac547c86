"""MoveNet SinglePose Lightning on LiteRT, with the crop tracking of the MoveNet tutorial.

The tutorial (tensorflow.org/hub/tutorials/movenet, "cropping algorithm") runs each frame on
a square crop found from the previous frame's keypoints: centred on the hips, large enough
for 1.9x the torso and 1.2x the body extent seen, never larger than the frame, and the whole
(letterboxed) frame again whenever the torso is not visible. A small or off-centre person
then fills the model's 192x192 input instead of a few pixels of it. Without tracking every
frame is the whole frame, letterboxed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidaction.data.pose.joints import JOINTS
from vidaction.data.pose.litert import PoseModelError, shared_interpreter

INPUT = 192
MIN_CROP_KEYPOINT_SCORE = 0.2  # the tutorial's threshold for a joint to count
_TORSO = [JOINTS.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
_HIPS = [JOINTS.index("left_hip"), JOINTS.index("right_hip")]
_SHOULDERS = [JOINTS.index("left_shoulder"), JOINTS.index("right_shoulder")]


@dataclass(frozen=True)
class Region:
    """A square crop in source pixels (edges at integers): may reach outside the frame,
    where the model sees black."""

    x0: float
    y0: float
    side: float


def full_region(width: int, height: int) -> Region:
    """The whole frame, centred in a square (the tutorial's init_crop_region): letterbox."""
    side = float(max(width, height))
    return Region((width - side) / 2, (height - side) / 2, side)


def determine_crop_region(points: np.ndarray, width: int, height: int) -> Region:
    """The tutorial's determine_crop_region, on (17, 3) keypoints in source pixels."""
    s = points[:, 2]
    torso = (s[_HIPS] > MIN_CROP_KEYPOINT_SCORE).any() and \
        (s[_SHOULDERS] > MIN_CROP_KEYPOINT_SCORE).any()
    if not torso:
        return full_region(width, height)
    cx, cy = points[_HIPS, 0].mean(), points[_HIPS, 1].mean()
    torso_x = np.abs(cx - points[_TORSO, 0]).max()
    torso_y = np.abs(cy - points[_TORSO, 1]).max()
    seen = s >= MIN_CROP_KEYPOINT_SCORE
    body_x = np.abs(cx - points[seen, 0]).max() if seen.any() else 0.0
    body_y = np.abs(cy - points[seen, 1]).max() if seen.any() else 0.0
    half = max(torso_x * 1.9, torso_y * 1.9, body_x * 1.2, body_y * 1.2)
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2 or not math.isfinite(half) or half < 1:
        return full_region(width, height)
    return Region(float(cx - half), float(cy - half), float(2 * half))


def crop(frame: np.ndarray, region: Region, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`region` of `frame` resized to size x size (black outside the frame), and the affine
    map (2, 2): out-pixel continuous coordinate -> source continuous coordinate, per axis
    (scale, offset), exact for the placement chosen."""
    import cv2

    h, w = frame.shape[:2]
    s = size / region.side
    out = np.zeros((size, size, 3), np.uint8)
    # whole source pixels inside the region (a fraction of one at each edge is left out)
    sx0, sy0 = max(0, math.ceil(region.x0)), max(0, math.ceil(region.y0))
    sx1 = min(w, math.floor(region.x0 + region.side))
    sy1 = min(h, math.floor(region.y0 + region.side))
    dx0, dy0 = max(0, round((sx0 - region.x0) * s)), max(0, round((sy0 - region.y0) * s))
    dx1 = min(size, round((sx1 - region.x0) * s))
    dy1 = min(size, round((sy1 - region.y0) * s))
    if sx1 <= sx0 or sy1 <= sy0 or dx1 <= dx0 or dy1 <= dy0:  # nothing of the frame in view
        return out, np.array([[1 / s, region.x0], [1 / s, region.y0]])
    part = frame[sy0:sy1, sx0:sx1]
    dw, dh = dx1 - dx0, dy1 - dy0
    shrink = dw * 2 < part.shape[1] or dh * 2 < part.shape[0]
    out[dy0:dy1, dx0:dx1] = cv2.resize(part, (dw, dh), interpolation=cv2.INTER_AREA
                                       if shrink else cv2.INTER_LINEAR)
    rx, ry = (sx1 - sx0) / dw, (sy1 - sy0) / dh
    return out, np.array([[rx, sx0 - dx0 * rx], [ry, sy0 - dy0 * ry]])


class MoveNet:
    """One MoveNet interpreter; `run(frame, region)` -> (17, 3) x, y (source pixels, pixel
    centres at integers, as OpenCV draws) and score."""

    joints = JOINTS

    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.it, ins, outs = shared_interpreter(self.path, threads)
        d = ins[0]
        if len(ins) != 1 or tuple(d["shape"]) != (1, INPUT, INPUT, 3) or \
                d["dtype"] != np.uint8 or tuple(outs[0]["shape"]) != (1, 1, 17, 3):
            raise PoseModelError(
                f"{self.path}: not MoveNet SinglePose Lightning int8 (input "
                f"{list(d['shape'])} {np.dtype(d['dtype']).name}, output "
                f"{list(outs[0]['shape'])}; expected uint8 [1, 192, 192, 3] -> [1, 1, 17, 3])")
        self._in, self._out = d["index"], outs[0]["index"]

    def run(self, frame: np.ndarray, region: Region) -> np.ndarray:
        img, m = crop(frame, region, INPUT)
        self.it.set_tensor(self._in, img[None])
        self.it.invoke()
        yxs = self.it.get_tensor(self._out)[0, 0]
        out = np.empty((17, 3), np.float32)
        out[:, 0] = m[0, 0] * yxs[:, 1] * INPUT + m[0, 1] - 0.5
        out[:, 1] = m[1, 0] * yxs[:, 0] * INPUT + m[1, 1] - 0.5
        out[:, 2] = np.clip(yxs[:, 2], 0.0, 1.0)
        return out


class MoveNetTracker:
    """MoveNet over consecutive frames; with `track`, each crop comes from the last result."""

    def __init__(self, net: MoveNet, track: bool = True):
        self.net = net
        self.track = track
        self._last: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        self._last = None

    def step(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._size, self._last = (w, h), None
        if self.track and self._last is not None:
            # the tutorial's keypoints are pixel-edge based; ours are centre based
            prev = self._last.copy()
            prev[:, :2] += 0.5
            region = determine_crop_region(prev, w, h)
        else:
            region = full_region(w, h)
        out = self.net.run(frame, region)
        self._last = out
        return out
