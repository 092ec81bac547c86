"""Where each pose model's files come from, and finding them: `--weights PATH`, else the
official download, cached under $VIDACTION_CACHE/weights/pose and sha256-checked (io.download)."""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from vidaction.data.pose.joints import _family
from vidaction.data.pose.litert import PoseModelError


@dataclass(frozen=True)
class WeightFile:
    role: str  # "model" (MoveNet), "detector" / "landmark" (BlazePose)
    filename: str
    url: str
    sha256: str


# MoveNet: the TF Hub tutorial's link; tfhub.dev now redirects it to Kaggle Models
# (google/movenet, tfLite, singlepose-lightning-tflite-int8), which serves the same file.
MOVENET_URL = ("https://tfhub.dev/google/lite-model/movenet/singlepose/lightning/tflite/"
               "int8/4?lite-format=tflite")
_MEDIAPIPE = "https://storage.googleapis.com/mediapipe-assets/"

_DETECTOR = WeightFile("detector", "pose_detection.tflite", _MEDIAPIPE + "pose_detection.tflite",
                       "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c")
WEIGHTS: dict[str, tuple[WeightFile, ...]] = {
    "movenet": (WeightFile(
        "model", "movenet_singlepose_lightning_int8_4.tflite", MOVENET_URL,
        "cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105"),),
    "blazepose": (_DETECTOR, WeightFile(
        "landmark", "pose_landmark_lite.tflite", _MEDIAPIPE + "pose_landmark_lite.tflite",
        "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61")),
    "blazepose-full": (_DETECTOR, WeightFile(
        "landmark", "pose_landmark_full.tflite", _MEDIAPIPE + "pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f")),
}


def _given(model: str, weights: str | os.PathLike | list | tuple) -> dict[str, Path]:
    """`--weights`: a file (MoveNet), a folder holding the files under their official names,
    or (BlazePose) the files themselves, told apart by name or by content."""
    specs = WEIGHTS[model]
    paths = [Path(p).expanduser() for p in (weights if isinstance(weights, (list, tuple))
                                           else [weights])]
    found: dict[str, Path] = {}
    for p in paths:
        if p.is_dir():
            for s in specs:
                if (p / s.filename).is_file():
                    found.setdefault(s.role, p / s.filename)
        elif not p.exists():
            raise PoseModelError(f"{p}: --weights: no such file or folder")
    files = [p for p in paths if p.is_file()]
    if len(specs) == 1 and len(files) == 1:
        found[specs[0].role] = files[0]
    else:
        for p in files:
            spec = next((s for s in specs if s.filename == p.name), None) or \
                next((s for s in specs if s.sha256 == file_sha256(p)), None)
            if spec is None and len(files) == 1:  # one renamed landmark file: the rest beside it
                spec = next(s for s in specs if s.role == "landmark")
            if spec is None:
                raise PoseModelError(f"{p}: --weights: not one of the {model} files "
                                     f"({', '.join(s.filename for s in specs)})")
            found[spec.role] = p
        if len(files) == 1:
            for s in specs:
                if s.role not in found and (files[0].parent / s.filename).is_file():
                    found[s.role] = files[0].parent / s.filename
    missing = [s.filename for s in specs if s.role not in found]
    if missing:
        where = ", ".join(str(p) for p in paths)
        raise PoseModelError(f"{where}: --weights: {model} needs {', '.join(missing)} "
                             "(a folder with the files, or the files)")
    from vidaction.io.download import fetch_verified

    # a local copy that is not the published file is used, with a warning
    return {s.role: fetch_verified(s.url, s.sha256, s.filename, subdir="weights/pose",
                                   weights=found[s.role]) for s in specs}


def resolve_weights(model: str, weights: str | os.PathLike | list | tuple | None = None,
                    cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Role -> local file of `model`'s weights: `weights` as given, else downloaded once from
    the official location into the cache and sha256-checked."""
    _family(model)  # an unknown name is one line
    key = (model, repr(weights), str(cache_dir))
    with _resolved_lock:
        hit = _resolved.get(key)
    if hit is not None and all(_stamp(p) == st for p, st in hit):
        return {s.role: p for s, (p, _) in zip(WEIGHTS[model], hit, strict=True)}
    if weights is not None:
        files = _given(model, weights)
    else:
        from vidaction.io.download import fetch_verified

        files = {s.role: fetch_verified(s.url, s.sha256, s.filename, subdir="weights/pose",
                                        cache_dir=cache_dir)
                 for s in WEIGHTS[model]}
    with _resolved_lock:  # a training set asks once per clip: check the files once
        _resolved[key] = [(files[s.role], _stamp(files[s.role])) for s in WEIGHTS[model]]
    return files


_resolved: dict[tuple, list] = {}
_resolved_lock = threading.Lock()


def _stamp(p: Path) -> tuple | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _sha(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, computed once per process while it is unchanged."""
    st = os.stat(path)
    return _sha(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def weights_id(files: dict[str, Path]) -> str:
    """One sha256 over the files in use: part of every keypoint cache key."""
    if len(files) == 1:
        return file_sha256(next(iter(files.values())))
    return hashlib.sha256("".join(f"{r}={file_sha256(p)};" for r, p in sorted(files.items()))
                          .encode()).hexdigest()
