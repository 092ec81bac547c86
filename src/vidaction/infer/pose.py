"""`vidaction pose`: keypoints of every frame of videos, as files, a summary and a skeleton
overlay.

Per input, OUT/<stem>.keypoints.json and OUT/<stem>.keypoints.npz are written together
(both or neither). The JSON holds the meta (format, path, model, weights_sha256, tracked,
fps, width, height, frames, joints) and `keypoints`: per frame, per joint [x, y, score], x
and y in pixels of the source frame (pixel centres at integers), score in [0, 1]. The NPZ
holds `points` float32 (frames, joints, 3), the same numbers unrounded, and `meta`, the JSON
meta as a string. `Keypoints.load()` reads either.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from vidaction.data.pose import MIN_SCORE, Keypoints, PoseTracker, cached_keypoints, edges
from vidaction.errors import UserError
from vidaction.infer.inputs import each_input, inputs_and_overlay, per_input
from vidaction.infer.overlay import VIDEO_MAX_SIDE, OverlayWriter, _shrink
from vidaction.io import VideoReader
from vidaction.io.writer import refuse_existing, write_together
from vidaction.progress import counted

# one colour per side, as the MoveNet tutorial draws: left magenta, right cyan, middle yellow
_LEFT, _RIGHT, _MID = (255, 0, 255), (0, 255, 255), (255, 255, 0)


def _side(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def draw_skeleton(frame: np.ndarray, points: np.ndarray, joints: Sequence[str],
                  pairs: Sequence[tuple[int, int]], min_score: float = MIN_SCORE,
                  scale: float = 1.0) -> np.ndarray:
    """A copy of `frame` with the joints scoring at least `min_score` and the edges between
    two such joints drawn; `points` (J, 3) in pixels of a frame `scale` times smaller or
    larger than this one."""
    import cv2

    img = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    side = min(img.shape[:2])
    thick = max(1, round(side / 160))
    radius = max(2, round(side / 110))
    shift = 4  # sub-pixel positions
    xy = np.round(points[:, :2] * scale * (1 << shift)).astype(np.int64)
    ok = (points[:, 2] >= min_score) & np.isfinite(points[:, :2]).all(axis=1)
    for a, b in pairs:
        if ok[a] and ok[b]:
            color = _side(joints[a]) if _side(joints[a]) == _side(joints[b]) else _MID
            cv2.line(img, tuple(int(v) for v in xy[a]), tuple(int(v) for v in xy[b]), color,
                     thick, cv2.LINE_AA, shift)
    for j in np.flatnonzero(ok):
        c = tuple(int(v) for v in xy[j])
        cv2.circle(img, c, radius << shift, (255, 0, 0), -1, cv2.LINE_AA, shift)
        cv2.circle(img, c, radius << shift, (255, 255, 255), max(1, thick // 2), cv2.LINE_AA,
                   shift)
    return img


def overlay_pose(src: str | os.PathLike, out: str | os.PathLike, kp: Keypoints,
                 min_score: float = MIN_SCORE, max_side: int = VIDEO_MAX_SIDE) -> int:
    """Every frame of `src` with its skeleton drawn, written to `out` (.mp4 or .gif) at the
    source's frame rate; returns the frames written."""
    pairs = edges(kp.model)
    with VideoReader(src) as r, OverlayWriter(out, kp.fps or r.info.fps) as w:
        for i, frame in enumerate(r.iter_frames()):
            small = _shrink(frame, max_side)
            if i < kp.frames:
                small = draw_skeleton(small, kp.points[i], kp.joints, pairs, min_score,
                                      small.shape[1] / frame.shape[1])
            w.write(small)
    return w.frames


def summary(kp: Keypoints, min_score: float = MIN_SCORE) -> dict:
    """Per video: frames, mean score, share of joints at or above `min_score`, per joint."""
    s = kp.points[..., 2]
    return {"path": kp.path, "model": kp.model, "tracked": kp.tracked, "frames": kp.frames,
            "fps": kp.fps, "width": kp.width, "height": kp.height,
            "mean_score": round(float(s.mean()), 4),
            "visible": round(float((s >= min_score).mean()), 4),
            "joints": {n: round(float(v), 4) for n, v in zip(kp.joints, s.mean(0), strict=True)}}


def write_keypoints(kp: Keypoints, json_path: Path, npz_path: Path) -> list[Path]:
    """The .keypoints.json and .npz of one video, as one set."""
    return write_together([(json_path, kp.to_json() + "\n"), (npz_path, kp.to_npz())])


def _stem(src: Path, taken: set[str]) -> str:
    stem, k = src.stem, 2
    while stem in taken:
        stem = f"{src.stem}_{k}"
        k += 1
    taken.add(stem)
    return stem


def _plan(files, out_dir: Path, overlay: str | None, many: bool) -> dict[int, list[Path]]:
    """Every input's output paths, decided before any work: keypoint files, overlay."""
    stems: set[str] = set()
    taken: set[str] = set()
    plan = {}
    for it in files:
        stem = _stem(it.path, stems)
        paths = [out_dir / f"{stem}.keypoints.json", out_dir / f"{stem}.keypoints.npz"]
        if overlay:
            paths.append(per_input(Path(overlay), it.path, many, taken))
        plan[id(it)] = paths
    return plan


def pose_command(inputs: Sequence[str], model: str = "movenet",
                 weights: str | os.PathLike | Sequence[str] | None = None,
                 overlay: str | None = None, as_json: bool = False, out: str = ".",
                 track: bool = True, progress: bool = True, force: bool = False,
                 stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Keypoints for every input; a bad one gets one error line and the rest go on. Returns
    the exit status: 1 if any input failed. Existing outputs are refused, before the model
    loads, unless `force`."""
    from vidaction.progress import bar as progress_bar

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    items, files, many = inputs_and_overlay(inputs, overlay)
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: --out must be a folder, this is a file")
    plan = _plan(files, out_dir, overlay, many)
    refuse_existing([p for paths in plan.values() for p in paths], force)
    if isinstance(weights, (list, tuple)) and len(weights) == 1:
        weights = weights[0]
    tracker = None
    if files:  # weights problems: one line, before any input
        tracker = PoseTracker(model, weights, track)

    def work(it) -> tuple[dict, list[str]]:
        paths = plan[id(it)]
        kp = cached_keypoints(it.path, tracker=tracker, progress=progress)
        written = write_keypoints(kp, paths[0], paths[1])
        record = summary(kp)
        record["files"] = [str(p) for p in written]
        dur = kp.frames / kp.fps if kp.fps else 0.0
        text = [f"{it.path}  ({counted(kp.frames, 'frame')}, {dur:.2f} s, {kp.width}x"
                f"{kp.height}; {kp.model}{'' if kp.tracked else ', no tracking'})",
                f"  mean score {record['mean_score']:.2f}, "
                f"{record['visible'] * 100:.0f}% of joints at {MIN_SCORE} or more",
                f"  written: {', '.join(record['files'])}"]
        if overlay:
            n = overlay_pose(it.path, paths[2], kp)
            record["overlay"] = str(paths[2])
            text.append(f"  overlay: {paths[2]} ({counted(n, 'frame')})")
        return record, text

    bar = progress_bar(total=len(items), desc="pose", unit="video",
                       enabled=progress and len(items) >= 2)
    return each_input(items, work, bar, as_json, stdout, stderr)
