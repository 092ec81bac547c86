"""Clip augmentation for training: one random draw per clip, applied to every frame alike
(a flip or crop that changed from frame to frame would invent motion)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True  # off for classes that a mirror turns into each other (turn left/right)
    crop_scale: tuple[float, float] = (0.6, 1.0)  # area kept by the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    brightness: float = 0.15  # +- shift, in [0, 1] units
    contrast: float = 0.2  # +- relative gain
    time_jitter: float = 0.25  # each sampled index moves by up to this share of frame_step


def mirror_sensitive(classes: list[str]) -> bool:
    """Class lists with a left/right pair: a horizontal flip would swap their labels."""
    lower = [c.lower() for c in classes]
    return any("left" in c for c in lower) and any("right" in c for c in lower)


def jitter_indices(idx: np.ndarray, frame_step: int, share: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Move each sampled frame by a few frames, keeping order and the first frame."""
    r = int(frame_step * share)
    if r == 0 or len(idx) < 2:
        return idx
    moved = idx + rng.integers(-r, r + 1, len(idx))
    moved[0] = idx[0]
    return np.maximum.accumulate(np.maximum(moved, idx[0]))


def _bilinear_grid(start, extent, n_in, n_out):
    """Source positions of `n_out` samples spanning [start, start + extent] (shares of the
    side), as tf.image.crop_and_resize places them: (lower index, upper index, weight)."""
    import tensorflow as tf

    last = tf.cast(n_in - 1, tf.float32)
    i = tf.cast(tf.range(n_out), tf.float32)
    end = start + extent  # the op is given the box's edges, so its extent is end - start
    step = (end - start) * last / tf.cast(tf.maximum(n_out - 1, 1), tf.float32)
    pos = tf.where(n_out > 1, start * last + i * step, 0.5 * (start + end) * last)
    pos = tf.clip_by_value(pos, 0.0, last)
    lo = tf.floor(pos)
    lo_i = tf.cast(lo, tf.int32)
    return lo_i, tf.minimum(lo_i + 1, n_in - 1), pos - lo


def crop_and_resize(x, y0, x0, h, w, size):
    """One box (y0, x0, height, width in shares of the side) cut from every frame of a
    (T, H, W, C) float clip and resized bilinearly to (T, size, size, C).

    The same sampling and arithmetic as tf.image.crop_and_resize, in gathers: that op has
    no cost model, so grappler logs "Error in PredictCost()" for it on every epoch.
    """
    import tensorflow as tf

    shape = tf.shape(x)
    ylo, yhi, fy = _bilinear_grid(y0, h, shape[1], size)
    xlo, xhi, fx = _bilinear_grid(x0, w, shape[2], size)
    fx = fx[None, None, :, None]

    def along_x(rows):
        left, right = tf.gather(rows, xlo, axis=2), tf.gather(rows, xhi, axis=2)
        return left + (right - left) * fx

    top, bottom = along_x(tf.gather(x, ylo, axis=1)), along_x(tf.gather(x, yhi, axis=1))
    return top + (bottom - top) * fy[None, :, None, None]


def augment_clip(clip, seed, cfg: AugmentConfig):
    """(T, S, S, 3) uint8 -> uint8, with a stateless seed (reproducible per element)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 6)
    s = tf.shape(clip)[1]
    x = tf.cast(clip, tf.float32) / 255.0
    if cfg.flip:
        flip = tf.random.stateless_uniform((), seeds[0]) < 0.5
        x = tf.cond(flip, lambda: tf.reverse(x, axis=[2]), lambda: x)
    # random resized crop: one box for the whole clip
    area = tf.random.stateless_uniform((), seeds[1], *cfg.crop_scale)
    log_r = tf.random.stateless_uniform((), seeds[2], float(np.log(cfg.crop_ratio[0])),
                                        float(np.log(cfg.crop_ratio[1])))
    ratio = tf.exp(log_r)
    h = tf.minimum(tf.sqrt(area / ratio), 1.0)
    w = tf.minimum(tf.sqrt(area * ratio), 1.0)
    off = tf.random.stateless_uniform((2,), seeds[3])
    y0, x0 = off[0] * (1.0 - h), off[1] * (1.0 - w)
    x = crop_and_resize(x, y0, x0, h, w, s)
    gain = 1.0 + tf.random.stateless_uniform((), seeds[4], -cfg.contrast, cfg.contrast)
    shift = tf.random.stateless_uniform((), seeds[5], -cfg.brightness, cfg.brightness)
    mean = tf.reduce_mean(x)
    x = (x - mean) * gain + mean + shift
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
