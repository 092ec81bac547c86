"""K clips per video -> one probability vector: shared by `evaluate` and `predict`.

Clip verdicts are combined by averaging their softmax probabilities, not their logits.
Probabilities are bounded, so one clip with very large logits (a confident mistake on a
stretch with no action in it) cannot outvote the others; the average is itself a
probability distribution, so the reported loss is the cross-entropy of exactly what is
reported as the prediction. (MMAction2 calls this `average_clips="prob"`.)
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError

ModelFn = Callable[[np.ndarray], np.ndarray]  # uint8 (B, T, S, S, 3) -> logits (B, C)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for large logits)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class NonFiniteOutput(VidactionError):
    """The model gave NaN or inf: any probability, metric or label from it would be noise."""


def nonfinite_weight(predictor) -> str | None:
    """The name of the first model variable holding NaN or inf (None: all finite, or no
    Keras model to look into, as for a .tflite)."""
    for v in getattr(getattr(predictor, "model", None), "weights", None) or []:
        if not np.isfinite(np.asarray(v)).all():
            return str(v.name)
    return None


def model_location(predictor) -> Path:
    """What to name when the model is at fault: RUN/model, or the .tflite file."""
    path = Path(getattr(predictor, "path", "model"))
    return path / "model" if path.is_dir() else path


def check_finite_logits(logits: np.ndarray, predictor, source: str | os.PathLike) -> None:
    """Refuse NaN or inf logits with one line: the model's weights are named when they are
    the cause (training diverged), else the input that produced them."""
    logits = np.asarray(logits)
    if np.isfinite(logits).all():
        return
    what = "NaN" if np.isnan(logits).any() else "inf"
    where = model_location(predictor)
    weight = nonfinite_weight(predictor)
    if weight:
        raise NonFiniteOutput(f"{where}: the weights hold NaN or inf ({weight}), so every "
                              "output is meaningless; the training that made it diverged, "
                              "retrain it (a lower --lr)")
    raise NonFiniteOutput(f"{where}: outputs {what} for {source}; no score can be given")


def average_clips(clip_logits: np.ndarray) -> np.ndarray:
    """(K, C) logits of one video's clips -> (C,) averaged probabilities."""
    return softmax(clip_logits).mean(axis=0)


def video_scores(model_fn: ModelFn, clips: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Averaged class probabilities (C,) of one video given its K clips (K, T, S, S, 3)."""
    logits = np.concatenate([np.asarray(model_fn(clips[i:i + batch_size]))
                             for i in range(0, len(clips), batch_size)])
    return average_clips(logits)


@dataclass
class Scored:
    key: object
    clip_logits: np.ndarray  # (K, C)
    probs: np.ndarray  # (C,) averaged over the K clips


def score_videos(model_fn: ModelFn, videos: Iterable[tuple[object, np.ndarray]],
                 batch_size: int = 8) -> Iterator[Scored]:
    """Score many videos, batching clips across video boundaries; yields in input order.

    `videos` yields (key, clips (K, T, S, S, 3)); K may differ between videos. Batches are
    formed the same way on every call, so the numbers repeat exactly.
    """
    pending: deque[tuple[object, int]] = deque()  # (key, clips still to score)
    buf: list[np.ndarray] = []
    done: list[np.ndarray] = []  # logits of the clips scored so far, in order

    def flush(n: int) -> None:
        batch = np.concatenate(buf)
        take, rest = batch[:n], batch[n:]
        done.extend(np.asarray(model_fn(take)))
        buf.clear()
        if len(rest):
            buf.append(rest)

    def ready() -> Iterator[Scored]:
        while pending and len(done) >= pending[0][1]:
            key, k = pending.popleft()
            logits = np.stack(done[:k])
            del done[:k]
            yield Scored(key, logits, average_clips(logits))

    for key, clips in videos:
        clips = np.asarray(clips)
        pending.append((key, len(clips)))
        buf.append(clips)
        while sum(len(b) for b in buf) >= batch_size:
            flush(batch_size)
        yield from ready()
    if buf:
        flush(sum(len(b) for b in buf))
    yield from ready()


@dataclass
class Loaded:
    index: int
    path: str
    clips: np.ndarray | None  # (K, T, S, S, 3) uint8, None when the file is unreadable
    error: str = ""
    short: bool = False  # shorter than one clip: frames filled in (sampling.short)


def load_videos(paths: Sequence[str | os.PathLike], sampling, clips: int = 3,
                workers: int = 2, lookahead: int = 8) -> Iterator[Loaded]:
    """K evenly spaced clips of each video, decoded in threads, yielded in input order.

    PyAV releases the GIL while it decodes, so threads use both cores; at most
    `lookahead` videos wait in memory. An unreadable file comes back with its reason.
    """
    from vidaction.data.sampling import sample_clips_short
    from vidaction.io import VideoReadError

    def one(i: int) -> Loaded:
        path = str(paths[i])
        try:
            got, _, short = sample_clips_short(path, sampling, clips=clips)
            return Loaded(i, path, got, short=short)
        except VideoReadError as e:
            return Loaded(i, path, None, e.reason)
        except OSError as e:
            return Loaded(i, path, None, e.strerror or str(e))
        except Exception as e:  # noqa: BLE001 - one broken file must not end an evaluation
            return Loaded(i, path, None, f"{type(e).__name__}: {e}")

    with ThreadPoolExecutor(max(1, workers)) as pool:
        queue: deque = deque()
        nxt = 0
        while nxt < len(paths) or queue:
            while nxt < len(paths) and len(queue) < max(1, lookahead):
                queue.append(pool.submit(one, nxt))
                nxt += 1
            yield queue.popleft().result()
