"""Pretrained classifiers that need no training: the official Kinetics-600 MoViNet.

`kinetics600` is MoViNet-A0-Stream trained on Kinetics-600 by its authors, as published
(int8 TFLite) on TF Hub, now Kaggle Models. It is used like a run: `.classes` (the 600
labels, shipped with the package), `.config` (with the sampling it was trained with),
`.predict_logits(clips)` and `.streamer()`, so `predict`, `--timeline`, `--overlay` and
`stream` take it in place of a run folder. The file itself is not bundled: the first use
fetches it from its official URL into `$VIDACTION_CACHE/weights/` and checks its sha256.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from vidaction.errors import UserError, VidactionError
from vidaction.io.download import (
    Corrupt,
    WeightsError,
    cache_dir_for,
    fetch_verified,
)

KINETICS600 = "kinetics600"
# Kaggle Models' download API for the model TF Hub published as
# tensorflow/lite-model/movinet/a0/stream/kinetics-600/classification/tflite/int8/1 (tfhub.dev
# now redirects there). It answers with a .tar.gz holding `1.tflite`; a bare .tflite (the old
# tfhub.dev `?lite-format=tflite` answer) is taken as well.
URL = ("https://www.kaggle.com/api/v1/models/google/movinet/tfLite/"
       "a0-stream-kinetics-600-classification-tflite-int8/1/download")
SHA256 = "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d1dce97fe3aa9c2ac"
FILENAME = "movinet_a0_stream_kinetics600_int8.tflite"
REMEDY = "--weights PATH"
LABELS = "kinetics600_labels.txt"


@dataclass(frozen=True)
class PretrainedClassifier:
    """What `vidaction models` lists and how clips are cut for it."""

    name: str
    description: str
    size: int
    fps: float  # the rate it was trained at: samples per second of video
    n_frames: int  # frames per clip for `predict` (a stream model takes any number)
    resize: str
    url: str
    sha256: str
    filename: str


# A0 was trained on 50-frame clips at 5 fps (10 s, the length of a Kinetics clip), at 172 px.
# Centre crop, as Kinetics was trained: on the shared real clips of known class it gives the
# true class a mean probability of 0.64 against letterbox's 0.49 (mean log-probability -0.47
# against -0.96; top-1 on both), and with the two exercise clips 3 of 4 top-1 against 2 of 4
# (bench/kinetics_crop.py, bench/results/kinetics_crop.json). Letterbox wins on the tutorial
# jumping-jacks clip only (0.80 against 0.50: its person sits in the top half, above a plot).
CLASSIFIERS = {
    KINETICS600: PretrainedClassifier(
        KINETICS600, "MoViNet-A0-Stream, Kinetics-600 (600 actions), official int8 TFLite",
        size=172, fps=5.0, n_frames=50, resize="crop", url=URL, sha256=SHA256,
        filename=FILENAME),
}


def is_pretrained_name(name: object) -> bool:
    return isinstance(name, str) and name in CLASSIFIERS


def labels() -> list[str]:
    """The 600 Kinetics-600 class names in logit order (package data)."""
    text = resources.files("vidaction.models").joinpath(LABELS).read_text(encoding="utf-8")
    return [c for c in text.splitlines() if c]


def _kind(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[4:8] == b"TFL3":
        return "tflite"
    return "other"


def _unpack(src: Path, dest: Path, name: str | os.PathLike | None = None) -> None:
    """`src` (a downloaded .tflite, or a .tar.gz holding one) -> `dest`, through a temporary
    name. Raises Corrupt for a file that is neither, or an archive cut short (naming `name`,
    by default `src`)."""
    name = name or src
    with open(src, "rb") as f:
        kind = _kind(f.read(8))
    tmp = dest.with_name(f"{dest.name}.unpack-{os.getpid()}")
    try:
        if kind == "tflite":
            os.replace(src, dest)
            return
        if kind != "gzip":
            raise Corrupt(f"{name}: neither a TFLite model nor a .tar.gz of one")
        try:
            with tarfile.open(src, "r:gz") as tar:
                member = next((m for m in tar.getmembers()
                               if m.isfile() and m.name.endswith(".tflite")), None)
                if member is None:
                    raise Corrupt(f"{name}: the archive holds no .tflite file")
                with tar.extractfile(member) as body, open(tmp, "wb") as out:
                    while block := body.read(1 << 20):
                        out.write(block)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise Corrupt(f"{name}: damaged archive ({e or type(e).__name__})") from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_model(spec: PretrainedClassifier, weights: str | os.PathLike | None = None,
                url: str | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified .tflite: `weights` when given (a .tflite, or the .tar.gz the official
    URL serves), else the cached copy, else downloaded from `url` (default: the official
    one). A cached or downloaded copy whose sha256 is wrong is deleted and fetched again
    once; offline, the error names the URL and the --weights remedy."""
    url = url or spec.url
    dest = cache_dir_for("weights", cache_dir) / spec.filename
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_file():
            with open(path, "rb") as f:
                if _kind(f.read(8)) == "gzip":  # the archive as downloaded by hand
                    copy = dest.with_name(f"{dest.name}.given-{os.getpid()}")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_bytes(path.read_bytes())
                    try:
                        _unpack(copy, dest, path)
                    except Corrupt as e:
                        raise WeightsError(str(e)) from None
                    finally:
                        copy.unlink(missing_ok=True)
                    path = dest
        return fetch_verified(url, spec.sha256, spec.filename, weights=path, remedy=REMEDY)
    return fetch_verified(url, spec.sha256, spec.filename, cache_dir=cache_dir, remedy=REMEDY,
                          unpack=_unpack)


class KineticsClassifier:
    """The official int8 MoViNet-A0-Stream on LiteRT, used like a run.

    The file takes float frames in [0, 1] (our own exports take uint8): the streamer scales
    them. A clip is fed frame by frame from a zero state, and its logits are those after its
    last real frame: the black frames `read_clips` pads a short video with are left out, as
    the model's running average would count them.
    """

    # A video shorter than a clip is simply fewer frames to a stream model: no filling, so
    # no "padded" warning (see infer.predict.predict_video).
    drops_padding = True

    def __init__(self, spec: PretrainedClassifier, path: str | os.PathLike,
                 threads: int | None = None):
        from vidaction.models.litert import TFLiteStreamer

        self.spec = spec
        self.path = Path(path)
        self.threads = threads
        self.classes = labels()
        self._streamer_cls = TFLiteStreamer
        try:  # opens it: a file that is not this model fails here, in one line
            first = self.streamer()
            n_out = first.interpreter.get_tensor(first._logits).shape[-1]
        except KeyError as e:
            raise VidactionError(f"{self.path}: not the {spec.name} model (no {e} tensor in "
                                 "its signature)") from None
        if n_out != len(self.classes) or first.size != spec.size:
            raise VidactionError(f"{self.path}: not the {spec.name} model ({n_out} outputs "
                                 f"at {first.size} px; expected {len(self.classes)} at "
                                 f"{spec.size} px)")
        self._clip_streamer = first
        self.config = {
            "model": {"name": spec.name, "size": spec.size, "pretrained": spec.url,
                      "sha256": spec.sha256, "file": str(self.path)},
            "sampling": {"n_frames": spec.n_frames, "frame_step": 6, "size": spec.size,
                         "resize": spec.resize, "fps": spec.fps},
            "classes": list(self.classes),
        }

    def streamer(self):
        """A fresh interpreter with its own state, fed floats in [0, 1]."""
        return self._streamer_cls(self.path, self.threads, input_scale=1 / 255)

    def predict_logits(self, clips: np.ndarray) -> np.ndarray:
        """Logits (batch, 600) for uint8 clips (batch, frames, 172, 172, 3)."""
        s = self._clip_streamer
        out = []
        for clip in np.asarray(clips):
            real = np.flatnonzero(clip.reshape(len(clip), -1).any(axis=1))
            n = int(real[-1]) + 1 if len(real) else len(clip)
            s.reset()
            for frame in clip[:n]:
                logits = s.step(frame)
            out.append(logits)
        return np.stack(out)


def load_pretrained(name: str, weights: str | os.PathLike | None = None,
                    url: str | None = None, threads: int | None = None) -> KineticsClassifier:
    """`kinetics600` ready to predict: fetched (or taken from `weights`), verified, opened."""
    if name not in CLASSIFIERS:
        raise UserError(f"{name}: not a pretrained classifier (known: "
                        f"{', '.join(CLASSIFIERS)})")
    spec = CLASSIFIERS[name]
    return KineticsClassifier(spec, fetch_model(spec, weights, url), threads)


def format_classifier_table() -> str:
    """The 'pretrained classifiers' section of `vidaction models`."""
    rows = [("name", "input", "classes", "rate", "description")]
    for c in CLASSIFIERS.values():
        rows.append((c.name, f"{c.size}x{c.size}", str(len(labels())), f"{c.fps:g} fps",
                     f"{c.description}; fetched on first use (3.3 MB)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:-1], widths, strict=False))
                     + "  " + r[-1] for r in rows)

