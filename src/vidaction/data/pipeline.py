"""tf.data input pipeline: parallel decoding, shuffle, batch, prefetch.

Clips travel as uint8 (4x less memory than float); `to_float01` converts them inside
the model graph. Decoding runs in PyAV (which releases the GIL while FFmpeg works) from
tf.data's parallel map, so two cores decode two clips at once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vidaction.data.augment import AugmentConfig, augment_clip, jitter_indices
from vidaction.data.cache import ClipCache, clip_key, file_identity
from vidaction.data.sampling import (
    SamplingConfig,
    clip_indices,
    eval_starts,
    read_clips,
    read_index_sets,
    train_start,
)
from vidaction.data.sources import Clip
from vidaction.io import VideoReader, VideoReadError

log = logging.getLogger("vidaction.data")

# With a cache in training, the random start is drawn from this many evenly spaced
# positions per video, so every position is decoded once and then read from disk.
CACHE_POSITIONS = 4


@dataclass
class SkipLog:
    """Files skipped because they could not be read: warned once each, counted always."""

    counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, path: str, reason: str) -> None:
        with self._lock:
            first = path not in self.counts
            self.counts[path] = self.counts.get(path, 0) + 1
            self.reasons[path] = reason
        if first:
            log.warning("skipping %s: %s", path, reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class ClipLoader:
    """Turns (path, slot, seed) into a clip; the Python side of the tf.data map."""

    def __init__(self, cfg: SamplingConfig, training: bool, clips_per_video: int = 1,
                 cache: ClipCache | None = None, skips: SkipLog | None = None,
                 threads: int = 1, time_jitter: float = 0.0):
        self.time_jitter = time_jitter
        self.cfg = cfg
        self.training = training
        self.clips_per_video = clips_per_video
        self.cache = cache
        self.skips = skips if skips is not None else SkipLog()
        self.threads = threads

    def _positions(self) -> int:
        """How many fixed clip positions per video this loader can ask for (0: random)."""
        if self.training:
            return CACHE_POSITIONS if self.cache is not None else 0
        return self.clips_per_video

    def load(self, path: str, slot: int, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Clip number `slot` of the video (training: a random start from `seed`).

        With a cache, a miss decodes every position of the video in one pass and stores
        them all, so from the next epoch on nothing of this video is decoded again.
        """
        cfg = self.cfg
        positions = self._positions()
        try:
            if positions == 0:
                rng = np.random.default_rng(seed)
                with VideoReader(path, threads=self.threads) as r:
                    cfg = cfg.at_rate(r.info.fps)  # --fps: this video's own frame step
                    idx, mask = clip_indices(train_start(r.frame_count, cfg, rng),
                                             r.frame_count, cfg)
                    if self.time_jitter:
                        idx = jitter_indices(idx, cfg.frame_step, self.time_jitter, rng)
                        mask = idx < r.frame_count
                    clips, masks = read_index_sets(r, [(idx, mask)], cfg)
                return clips[0], masks[0], True
            if self.training:
                slot = int(np.random.default_rng(seed).integers(positions))
            keys = None
            if self.cache is not None:
                ident = file_identity(path)
                mode = "train" if self.training else "eval"
                keys = [clip_key(ident, cfg, f"{mode}{positions}:{j}") for j in range(positions)]
                hit = self.cache.get(keys[slot], (cfg.n_frames, cfg.size, cfg.size, 3))
                if hit is not None:
                    return hit[0], hit[1], True
            with VideoReader(path, threads=self.threads) as r:
                cfg = cfg.at_rate(r.info.fps)
                clips, masks = read_clips(r, eval_starts(r.frame_count, cfg, positions), cfg)
            if keys is not None:  # a cache that cannot be written warns and is bypassed,
                for key, c, m in zip(keys, clips, masks, strict=True):  # never skips a video
                    if not self.cache.put(key, c, m):
                        break
            return clips[slot], masks[slot], True
        except (VideoReadError, OSError) as e:
            self.skips.add(path, getattr(e, "reason", None) or str(e))
        except Exception as e:  # noqa: BLE001 - one broken file must not end a training run
            self.skips.add(path, f"{type(e).__name__}: {e}")
        shape = (cfg.n_frames, cfg.size, cfg.size, 3)
        return np.zeros(shape, np.uint8), np.zeros(cfg.n_frames, bool), False


def make_dataset(
    clips: Sequence[Clip] | Sequence[tuple[str | os.PathLike, int]],
    cfg: SamplingConfig,
    training: bool,
    batch_size: int = 8,
    seed: int = 0,
    clips_per_video: int = 1,
    cache_dir: str | os.PathLike | None = None,
    skips: SkipLog | None = None,
    with_mask: bool = False,
    with_video_id: bool = False,
    drop_remainder: bool = False,
    parallel: int | None = None,
    prefetch: int | None = None,
    augment: AugmentConfig | None = None,
):
    """A tf.data.Dataset of (clip uint8 [B, T, S, S, 3], label int32 [B]).

    training: shuffled each epoch, random start per clip and epoch (seeded).
    Otherwise: file order, `clips_per_video` evenly spaced clips per video, each its own
    element (add `with_video_id` to regroup them). Unreadable files are dropped with one
    warning each and counted in `skips`; a cache that cannot be written is not a reason to
    drop a file (see `ClipCache`). `augment` (training only) jitters the sampled
    frames in time (not with a cache, whose positions are fixed) and crops, flips and
    recolours each clip as a whole.
    """
    import tensorflow as tf

    pairs = [(str(c.path), int(c.label)) if isinstance(c, Clip) else (str(c[0]), int(c[1]))
             for c in clips]
    if not pairs:
        raise ValueError("no clips to load")
    k = 1 if training else max(int(clips_per_video), 1)
    paths = np.repeat([p for p, _ in pairs], k)
    labels = np.repeat(np.array([lab for _, lab in pairs], np.int32), k)
    vids = np.repeat(np.arange(len(pairs), dtype=np.int32), k)
    slots = np.tile(np.arange(k, dtype=np.int32), len(pairs))

    cache = ClipCache(cache_dir) if cache_dir is not None else None
    augment = augment if training else None
    jitter = augment.time_jitter if augment is not None and cache is None else 0.0
    loader = ClipLoader(cfg, training, k, cache, skips, time_jitter=jitter)
    auto = tf.data.AUTOTUNE

    ds = tf.data.Dataset.from_tensor_slices((paths, labels, vids, slots))
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        # A fresh random stream each epoch, reproducible from `seed`.
        rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rand)).map(lambda t, r: (*t, r))
    else:
        ds = ds.map(lambda p, lab, v, s: (p, lab, v, s, tf.constant(0, tf.int64)))

    T, S = cfg.n_frames, cfg.size

    def _load(path, label, vid, slot, rnd):
        clip, mask, ok = tf.numpy_function(
            lambda p, s, r: loader.load(p.decode(), int(s), int(r) & 0x7FFFFFFF),
            [path, slot, rnd], [tf.uint8, tf.bool, tf.bool], stateful=training)
        clip.set_shape((T, S, S, 3))
        mask.set_shape((T,))
        ok.set_shape(())
        return clip, mask, label, vid, ok, rnd

    ds = ds.map(_load, num_parallel_calls=parallel or auto, deterministic=not training)
    ds = ds.filter(lambda c, m, lab, v, ok, r: ok)
    if augment is not None:
        # the element's own random number (new every epoch) seeds its augmentation
        ds = ds.map(lambda c, m, lab, v, ok, r: (
            augment_clip(c, tf.stack([r, tf.cast(seed, tf.int64)]), augment),
            m, lab, v, ok, r), num_parallel_calls=auto)

    def _pack(clip, mask, label, vid, ok, rnd):
        x = {"clip": clip, "mask": mask} if with_mask else clip
        return (x, label, vid) if with_video_id else (x, label)

    ds = ds.map(_pack)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.prefetch(prefetch or auto)
    ds.skips = skips if skips is not None else loader.skips  # type: ignore[attr-defined]
    ds.loader = loader  # type: ignore[attr-defined]
    return ds


def to_float01(clip):
    """uint8 [0, 255] -> float32 [0, 1], inside the model's graph."""
    import tensorflow as tf

    return tf.cast(clip, tf.float32) / 255.0
