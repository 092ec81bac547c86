"""Keypoints cached per video under $VIDACTION_CACHE/keypoints: a pose model runs over a
training set once, and every later epoch, run or command reads arrays.

The key covers the file (absolute path, mtime, size), the pose model's weights (sha256),
the model name and whether the crop was tracked; a changed file or model gets a new key.
Entries are CRC-checked `CacheStore` entries (see vidaction.data.cache): a damaged one is
recomputed with one warning; a cache that cannot be written warns once and the work goes
on without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from vidaction.data.cache import CacheStore, file_identity
from vidaction.data.pose.estimate import Keypoints, PoseTracker, estimate_video
from vidaction.data.pose.joints import joint_names
from vidaction.data.pose.weights import resolve_weights, weights_id
from vidaction.io.video import _check_file

FORMAT = "kp1"
_stores: dict[str, CacheStore] = {}
_lock = threading.Lock()


def _store(cache_dir: str | os.PathLike | None) -> CacheStore:
    from vidaction.paths import cache_root

    d = str(Path(cache_dir) if cache_dir is not None else cache_root() / "keypoints")
    with _lock:
        if d not in _stores:
            _stores[d] = CacheStore(d, "keypoint")
        return _stores[d]


def keypoints_key(path: str | os.PathLike, model: str, weights_sha256: str,
                  track: bool) -> str:
    blob = "\x00".join([FORMAT, *(str(v) for v in file_identity(path)), model,
                        weights_sha256, "track" if track else "full"])
    return hashlib.sha1(blob.encode()).hexdigest()


def cached_keypoints(path: str | os.PathLike, model: str = "movenet", weights=None,
                     cache_dir: str | os.PathLike | None = None, track: bool = True,
                     progress: bool = False, tracker: PoseTracker | None = None,
                     weights_cache_dir: str | os.PathLike | None = None) -> Keypoints:
    """`estimate_video(path, ...)`, computed once per file and pose model, then read back.

    `cache_dir` is the keypoint cache folder (default $VIDACTION_CACHE/keypoints); pass a
    `tracker` to reuse one PoseTracker over many videos."""
    _check_file(Path(path))  # a missing file: the reader's one line, before any weights work
    if tracker is not None:
        model, track, wid = tracker.model, tracker.track, tracker.weights_sha256
    else:
        wid = weights_id(resolve_weights(model, weights, weights_cache_dir))
    store = _store(cache_dir)
    key = keypoints_key(path, model, wid, track)
    f = store.dir / key[:2] / f"{key}.kp"
    n_joints = len(joint_names(model))
    got = store.read(f, [((None, n_joints, 3), np.float32), ((None,), np.uint8)], finite=True)
    if got is not None:
        try:
            meta = json.loads(bytes(got[1]).decode())
            if meta.get("model") == model and meta.get("frames") == len(got[0]):
                kp = Keypoints.from_meta(np.array(got[0]), meta)
                kp.path = str(path)
                return kp
        except (ValueError, KeyError, TypeError):
            pass
        store._damaged(f, ValueError("meta does not match its keypoints"))
    if tracker is None:
        tracker = PoseTracker(model, weights, track, cache_dir=weights_cache_dir)
    kp = estimate_video(path, progress=progress, tracker=tracker)
    meta = np.frombuffer(json.dumps(kp.meta()).encode(), np.uint8)
    store.write(f, [kp.points, meta])
    return kp
