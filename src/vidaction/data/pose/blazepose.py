"""MediaPipe BlazePose (detector + landmark model) on LiteRT, as MediaPipe's pose graph runs it.

The detector (224x224, letterboxed, values in [-1, 1]) finds the person: SSD boxes over 2254
anchors, each with 4 keypoints, of which 0 (hip centre) and 1 (a point giving the body's size
and tilt) define a rotated square region: centred on the hips, side 2x their distance,
turned so the body stands upright, then enlarged 1.25x. The landmark model (256x256 crop of
that region, values in [0, 1]) gives 39 points (x, y, z, visibility, presence): the 33
landmarks, then the same two alignment points, from which the next frame's region is taken
(tracking) while the pose flag holds; without tracking the detector runs on every frame.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from vidaction.data.pose.joints import BLAZEPOSE_JOINTS
from vidaction.data.pose.litert import PoseModelError, shared_interpreter

DET_INPUT = 224
LM_INPUT = 256
MIN_DETECTION = 0.5
MIN_PRESENCE = 0.5
ROI_SCALE = 1.25


@lru_cache(maxsize=1)
def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres (x, y) in [0, 1], as MediaPipe's SsdAnchorsCalculator makes
    them for the pose detector (strides 8, 16, 32, 32, 32; two anchors per layer; layers of
    one stride share their grid)."""
    strides = [8, 16, 32, 32, 32]
    out = []
    i = 0
    while i < len(strides):
        j, per_cell = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            per_cell += 2  # aspect ratio 1.0, and the interpolated scale
            j += 1
        fm = math.ceil(DET_INPUT / strides[i])
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm,
                             indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100, 100)))


def roi_from(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, side, rotation) of the square region two alignment points define, in
    source pixels: MediaPipe's AlignmentPointsRects (target angle 90 degrees) and
    RectTransformation (scale 1.25, square)."""
    d = p1 - p0
    side = 2.0 * float(np.hypot(d[0], d[1])) * ROI_SCALE
    rot = math.pi / 2 - math.atan2(-d[1], d[0])
    rot = rot - 2 * math.pi * math.floor((rot + math.pi) / (2 * math.pi))
    return p0.astype(np.float64), side, rot


def _crop_matrix(center: np.ndarray, side: float, rot: float, size: int) -> np.ndarray:
    """(2, 3) affine: crop pixel (continuous) -> source pixel (continuous)."""
    c, s = math.cos(rot), math.sin(rot)
    lin = np.array([[c, -s], [s, c]]) * (side / size)
    off = center - lin @ np.array([size / 2, size / 2])
    return np.concatenate([lin, off[:, None]], 1)


def _warp(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The crop given by `m`; a region much larger than the crop is taken from a
    pre-shrunk frame, so that it is averaged, not aliased."""
    import cv2

    scale = math.hypot(m[0, 0], m[1, 0])
    m = m.copy()
    if scale > 2.5:
        f = scale / 1.5
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (max(1, round(w / f)), max(1, round(h / f))),
                           interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        m[0] *= fx
        m[1] *= fy
        frame = small
    # pixel centres: src_idx = lin @ (dst_idx + 0.5) + off - 0.5
    idx = m.copy()
    idx[:, 2] = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2] - 0.5
    return cv2.warpAffine(frame, idx, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


class BlazePose:
    """The two BlazePose interpreters; `detect(frame)` and `landmarks(frame, roi)`."""

    joints = BLAZEPOSE_JOINTS

    def __init__(self, detector: Path, landmark: Path, threads: int | None = None):
        self.det, din, dout = shared_interpreter(Path(detector), threads)
        self.lm, lin, lout = shared_interpreter(Path(landmark), threads)
        if tuple(din[0]["shape"]) != (1, DET_INPUT, DET_INPUT, 3) or \
                sorted(tuple(o["shape"]) for o in dout) != [(1, 2254, 1), (1, 2254, 12)]:
            raise PoseModelError(f"{detector}: not the BlazePose detector (input "
                                 f"{list(din[0]['shape'])}, expected [1, 224, 224, 3] -> "
                                 "boxes [1, 2254, 12] and scores [1, 2254, 1])")
        shapes = {tuple(o["shape"]): o["index"] for o in lout}
        if tuple(lin[0]["shape"]) != (1, LM_INPUT, LM_INPUT, 3) or (1, 195) not in shapes \
                or (1, 1) not in shapes:
            raise PoseModelError(f"{landmark}: not a BlazePose landmark model (input "
                                 f"{list(lin[0]['shape'])}, expected [1, 256, 256, 3] -> "
                                 "[1, 195] landmarks and [1, 1] pose flag)")
        self._din = din[0]["index"]
        self._boxes = next(o["index"] for o in dout if tuple(o["shape"]) == (1, 2254, 12))
        self._scores = next(o["index"] for o in dout if tuple(o["shape"]) == (1, 2254, 1))
        self._lin, self._lm_out, self._flag = lin[0]["index"], shapes[(1, 195)], shapes[(1, 1)]

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Alignment points (hip centre, size/tilt point) of the best detection, in source
        pixels (continuous), or None when no person scores 0.5."""
        import cv2

        h, w = frame.shape[:2]
        s = DET_INPUT / max(w, h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        px, py = (DET_INPUT - nw) // 2, (DET_INPUT - nh) // 2
        img = np.zeros((DET_INPUT, DET_INPUT, 3), np.float32)
        shrink = nw * 2 < w or nh * 2 < h
        img[py:py + nh, px:px + nw] = cv2.resize(
            frame, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        img = img / 127.5 - 1.0
        self.det.set_tensor(self._din, img[None])
        self.det.invoke()
        scores = _sigmoid(self.det.get_tensor(self._scores)[0, :, 0])
        best = int(np.argmax(scores))
        if scores[best] < MIN_DETECTION:
            return None
        raw = self.det.get_tensor(self._boxes)[0, best]
        a = ssd_anchors()[best]
        kps = raw[4:12].reshape(4, 2) / DET_INPUT + a  # letterbox-normalised
        src = (kps * DET_INPUT - [px, py]) / [nw / w, nh / h]
        return src[0], src[1]

    def landmarks(self, frame: np.ndarray, roi: tuple[np.ndarray, float, float]
                  ) -> tuple[np.ndarray, float]:
        """(39, 4) x, y (source pixels, continuous), visibility, presence (probabilities),
        and the pose flag, for the region `roi`."""
        center, side, rot = roi
        m = _crop_matrix(center, side, rot, LM_INPUT)
        img = _warp(frame, m, LM_INPUT).astype(np.float32) / 255.0
        self.lm.set_tensor(self._lin, img[None])
        self.lm.invoke()
        raw = self.lm.get_tensor(self._lm_out)[0].reshape(39, 5)
        flag = float(self.lm.get_tensor(self._flag).ravel()[0])
        out = np.empty((39, 4), np.float64)
        out[:, :2] = raw[:, :2] @ m[:, :2].T + m[:, 2]
        out[:, 2] = _sigmoid(raw[:, 3])
        out[:, 3] = _sigmoid(raw[:, 4])
        return out, flag


class BlazePoseTracker:
    """BlazePose over consecutive frames: the detector starts (and restarts) the region,
    the landmarks carry it on while `track` and the pose flag hold."""

    def __init__(self, net: BlazePose, track: bool = True):
        self.net = net
        self.track = track
        self._roi = None
        self._size = None

    def reset(self) -> None:
        self._roi = None

    def step(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._size, self._roi = (w, h), None
        roi = self._roi if self.track else None
        if roi is None:
            found = self.net.detect(frame)
            if found is None:
                return np.zeros((33, 3), np.float32)
            roi = roi_from(*found)
        lm, flag = self.net.landmarks(frame, roi)
        if flag < MIN_PRESENCE or roi[1] < 4:
            self._roi = None
            out = np.zeros((33, 3), np.float32)
            out[:, :2] = lm[:33, :2] - 0.5
            return out
        self._roi = roi_from(lm[33, :2], lm[34, :2])
        out = np.empty((33, 3), np.float32)
        out[:, :2] = lm[:33, :2] - 0.5  # pixel centres at integers, as MoveNet's
        out[:, 2] = lm[:33, 2]
        return out
