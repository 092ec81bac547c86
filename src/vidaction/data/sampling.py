"""Which frames make a clip, and how each frame is fitted to the model's input size.

Kept apart from datasets (as PyTorchVideo does) so that training, evaluation and
prediction share one definition of a clip.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from vidaction.io import VideoReader

SHORT_MODES = ("loop", "pad", "stretch")
# What new runs do with a video shorter than a clip (bench/short_clips.py measured the
# three on the built-in set; see docs/mmaction2.md). Runs keep theirs in config.json.
DEFAULT_SHORT = "loop"
# What `--short` means, for --help and the warnings.
SHORT_HELP = {"pad": "padded with black frames", "loop": "looped from its first frame",
              "stretch": "stretched over the whole video (smaller frame step)"}


@dataclass(frozen=True)
class SamplingConfig:
    """The reference's clip: `n_frames` frames, `frame_step` apart, letterboxed to `size`."""

    n_frames: int = 8
    frame_step: int = 15
    size: int = 224
    resize: str = "letterbox"  # or "crop": centre square crop, then resize
    # Frames per second of video to sample, whatever the source rate: each video's own
    # frame_step is then round(video_fps / fps) (see at_rate); None: frame_step as given.
    fps: float | None = None
    # A video shorter than `span`: "pad" with black frames (masked), "loop" from its first
    # frame again (MMAction2's SampleFrames default), or "stretch" the step so the clip
    # spreads over the whole video. See clip_indices.
    short: str = "pad"

    def __post_init__(self) -> None:
        if self.short not in SHORT_MODES:
            raise ValueError(f"short must be one of {', '.join(SHORT_MODES)}, "
                             f"not {self.short!r}")
        if self.n_frames < 1 or self.frame_step < 1 or self.size < 1:
            raise ValueError("n_frames, frame_step and size must be positive")
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, not {self.fps!r}")
        if self.resize not in ("letterbox", "crop"):
            raise ValueError(f"resize must be 'letterbox' or 'crop', not {self.resize!r}")

    @property
    def span(self) -> int:
        """Frames covered from the first sampled frame to the last, inclusive."""
        return 1 + (self.n_frames - 1) * self.frame_step

    def as_dict(self) -> dict:
        d = asdict(self)
        if self.fps is None:  # runs and cache keys from before --fps read the same
            del d["fps"]
        if self.short == "pad":  # and from before --short (pad was the only way)
            del d["short"]
        return d

    def is_short(self, frame_count: int) -> bool:
        """A video of `frame_count` frames cannot hold one whole clip: `short` fills it."""
        return 0 < frame_count < self.span

    def at_rate(self, video_fps: float | None) -> SamplingConfig:
        """This config for one video of `video_fps` frames per second: with `fps` set, its
        frame_step is video_fps / fps rounded to the nearest whole frame (halves up), at
        least 1, so 30 fps at fps=5 takes every 6th frame, 29.97 every 6th (4.995 samples a
        second), 24 every 5th (4.8), 10 every 2nd, and a rate below `fps` every frame.
        Without `fps`, or for a video whose rate is unknown, the config is used as it is."""
        step = frame_step_for(video_fps, self.fps)
        return self if step in (None, self.frame_step) else replace(self, frame_step=step)


def frame_step_for(video_fps: float | None, fps: float | None) -> int | None:
    """Frames between samples to take `fps` a second from a video of `video_fps`: the
    nearest whole number, halves up, at least 1 (None: no fps asked for, or rate unknown)."""
    if fps is None or not video_fps or not np.isfinite(video_fps) or video_fps <= 0:
        return None
    return max(1, int(np.floor(video_fps / fps + 0.5)))


def max_start(frame_count: int, cfg: SamplingConfig) -> int:
    return max(frame_count - cfg.span, 0)


def train_start(frame_count: int, cfg: SamplingConfig, rng: np.random.Generator) -> int:
    """Uniform over every start whose clip fits (the reference's randint allowed one past)."""
    return int(rng.integers(0, max_start(frame_count, cfg) + 1))


def eval_starts(frame_count: int, cfg: SamplingConfig, clips: int = 1) -> list[int]:
    """Deterministic starts: the centre clip for one, else `clips` evenly spaced ones
    from the first to the last possible start."""
    m = max_start(frame_count, cfg)
    if clips <= 1:
        return [m // 2]
    return [int(round(x)) for x in np.linspace(0, m, clips)]


def sampled_indices(frame_count: int, cfg: SamplingConfig,
                    positions: Sequence[int] = (1, 3)) -> list[int]:
    """Sorted frame indices that runs read by index from a video of `frame_count` frames,
    for `data check` to decode what training and evaluation will meet: the clips at
    `eval_starts` for each clip count in `positions` (with two or more, the first and last
    start are also the two ends of training's random range), and the last frame."""
    out = {frame_count - 1}
    for k in positions:
        for s in eval_starts(frame_count, cfg, k):
            idx, mask = clip_indices(s, frame_count, cfg)
            out.update(int(i) for i in idx[mask])
    return sorted(i for i in out if i >= 0)


def clip_indices(start: int, frame_count: int,
                 cfg: SamplingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of a clip and a mask of which exist. A clip running past the end (a
    video shorter than cfg.span) is filled as cfg.short says: "pad" leaves the missing
    frames black (mask False), "loop" continues from frame 0 (MMAction2's
    out_of_bound_opt="loop"), "stretch" spreads the n frames evenly over the whole video
    (frames repeat when it has fewer than n)."""
    idx = start + cfg.frame_step * np.arange(cfg.n_frames)
    if cfg.short == "pad" or frame_count <= 0 or idx[-1] < frame_count:
        return idx, idx < frame_count
    real = np.ones(cfg.n_frames, bool)
    if cfg.short == "loop":
        return idx % frame_count, real
    return np.round(np.linspace(0, frame_count - 1, cfg.n_frames)).astype(idx.dtype), real


def fit_geometry(width: int, height: int, size: int, mode: str) -> tuple[int, int, tuple]:
    """(scaled_w, scaled_h, box): for letterbox, box = (top, bottom, left, right) padding;
    for crop, box = (x0, y0, side) of the centre square cropped before scaling."""
    if mode == "letterbox":
        scale = min(size / width, size / height)
        sw = max(1, min(size, int(round(width * scale))))
        sh = max(1, min(size, int(round(height * scale))))
        top, left = (size - sh) // 2, (size - sw) // 2
        return sw, sh, (top, size - sh - top, left, size - sw - left)
    side = min(width, height)
    return size, size, ((width - side) // 2, (height - side) // 2, side)


def letterbox(frame: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio, then pad with black, centred (tf resize_with_pad)."""
    import cv2

    h, w = frame.shape[:2]
    sw, sh, (top, bottom, left, right) = fit_geometry(w, h, size, "letterbox")
    if (w, h) != (sw, sh):
        frame = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)
    return _pad(frame, top, bottom, left, right)


def _pad(frame: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    if not (top or bottom or left or right):
        return frame
    return np.pad(frame, ((top, bottom), (left, right), (0, 0)))


def center_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """Crop the centre square, then resize it to size x size (the CNN-RNN recipe)."""
    import cv2

    h, w = frame.shape[:2]
    _, _, (x0, y0, side) = fit_geometry(w, h, size, "crop")
    sq = frame[y0:y0 + side, x0:x0 + side]
    if side != size:
        sq = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(sq)


def fit_frame(frame: np.ndarray, size: int, mode: str) -> np.ndarray:
    return letterbox(frame, size) if mode == "letterbox" else center_crop(frame, size)


def read_clip(
    reader: VideoReader,
    start: int,
    cfg: SamplingConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(clip, mask): (n_frames, size, size, 3) uint8 RGB and which frames are real.

    Frames past the end are black, never a copy of the last good one.
    """
    clips, masks = read_clips(reader, [start], cfg)
    return clips[0], masks[0]


def read_clips(
    reader: VideoReader, starts: list[int], cfg: SamplingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Several clips of one video in one pass over it: each frame decoded once, even when
    clips overlap. Returns (len(starts), n_frames, S, S, 3) and the masks."""
    n = reader.frame_count
    return read_index_sets(reader, [clip_indices(s, n, cfg) for s in starts], cfg)


def read_index_sets(
    reader: VideoReader, pairs: list[tuple[np.ndarray, np.ndarray]], cfg: SamplingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Clips given as (frame indices, mask) pairs: the general form of read_clips."""
    out = np.zeros((len(pairs), cfg.n_frames, cfg.size, cfg.size, 3), np.uint8)
    masks = np.stack([m for _, m in pairs])
    wanted = sorted({int(i) for idx, m in pairs for i in idx[m]})
    if not wanted:
        return out, masks
    w, h = reader.info.width, reader.info.height
    if cfg.resize == "letterbox":
        sw, sh, (top, _, left, _) = fit_geometry(w, h, cfg.size, "letterbox")
        frames = reader.read(wanted, decode_size=(sw, sh))
        where = (slice(top, top + sh), slice(left, left + sw))
    else:
        frames = reader.read(wanted, transform=lambda f: center_crop(f, cfg.size))
        where = (slice(None), slice(None))
    row = {i: k for k, i in enumerate(wanted)}
    for c, (idx, m) in enumerate(pairs):
        for t in np.flatnonzero(m):
            out[c, t][where] = frames[row[int(idx[t])]]
    return out, masks


def sample_clip(
    path: str | os.PathLike,
    cfg: SamplingConfig,
    training: bool = False,
    rng: np.random.Generator | None = None,
    start: int | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip from a file: random start when training, the centre clip otherwise."""
    with VideoReader(path, threads=threads) as r:
        cfg = cfg.at_rate(r.info.fps)
        if start is None:
            if training:
                start = train_start(r.frame_count, cfg, rng or np.random.default_rng())
            else:
                start = eval_starts(r.frame_count, cfg, 1)[0]
        return read_clip(r, start, cfg)


def sample_clips(
    path: str | os.PathLike, cfg: SamplingConfig, clips: int = 3, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`clips` evenly spaced clips of one video, (clips, n_frames, S, S, 3), one file open."""
    got, masks, _ = sample_clips_short(path, cfg, clips, threads)
    return got, masks


def sample_clips_short(
    path: str | os.PathLike, cfg: SamplingConfig, clips: int = 3, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, bool]:
    """sample_clips, and whether the video was shorter than one clip (filled: cfg.short)."""
    with VideoReader(path, threads=threads) as r:
        cfg = cfg.at_rate(r.info.fps)
        got, masks = read_clips(r, eval_starts(r.frame_count, cfg, clips), cfg)
        return got, masks, cfg.is_short(r.frame_count)
