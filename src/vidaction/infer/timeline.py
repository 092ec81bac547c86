"""Label a long video window by window: a table of (start, end, label, probability).

How windows are cut: the video is first sampled every `frame_step`-th frame (the run's
frame_step by default, so each window looks like the clips the model was trained on; pass
frame_step=1 for the reference's chunks of consecutive frames). That sequence of sampled
frames is split into windows of `window` frames, one starting every `stride` sampled frames;
window == stride (the default) gives consecutive, non-overlapping windows, the reference's
"split into 8-frame samples". When the last full window stops short of the end, one more
window aligned to the end is added, so the tail is labelled from real frames; a video shorter
than one window gets a single window, filled as `cfg.short` says (loop, pad or stretch), as
`predict` fills a clip.

Windows are read a chunk at a time with one open reader, so a long video is never held in
memory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vidaction.data.sampling import SamplingConfig, clip_indices, read_index_sets
from vidaction.io import VideoReader, VideoReadError
from vidaction.models.scoring import check_finite_logits, softmax

CHUNK = 32  # windows decoded together: bounded memory, one pass over the file
BATCH = 8  # windows per model call


@dataclass(frozen=True)
class Window:
    index: int
    start_frame: int
    end_frame: int  # inclusive: the last frame this window stands for
    indices: np.ndarray  # frames fed to the model
    mask: np.ndarray  # which of them exist (False: padded black)

    @property
    def centre(self) -> float:
        return (self.start_frame + self.end_frame) / 2


def plan_windows(frame_count: int, window: int, stride: int, frame_step: int) -> list[Window]:
    """Windows over a video of `frame_count` frames; see the module docstring."""
    if min(window, stride, frame_step) < 1:
        raise ValueError("window, stride and frame_step must be at least 1")
    n = max(1, math.ceil(frame_count / frame_step))  # sampled frames
    if n <= window:
        starts = [0]
    else:
        starts = list(range(0, n - window + 1, stride))
        if starts[-1] + window < n:
            starts.append(n - window)
    out = []
    for k, s in enumerate(starts):
        idx = (s + np.arange(window)) * frame_step
        end = min((s + window) * frame_step, frame_count) - 1
        out.append(Window(k, s * frame_step, max(end, s * frame_step), idx, idx < frame_count))
    return out


def moving_average(probs: np.ndarray, n: int) -> np.ndarray:
    """Centred mean over `n` windows; at the ends, over the windows that exist."""
    if n <= 1 or len(probs) < 2:
        return probs
    kernel = np.ones(n)
    lo = (n - 1) // 2
    pad = np.pad(probs, ((lo, n - 1 - lo), (0, 0)))
    count = np.convolve(np.pad(np.ones(len(probs)), (lo, n - 1 - lo)), kernel, "valid")
    summed = np.stack([np.convolve(pad[:, c], kernel, "valid") for c in range(probs.shape[1])],
                      axis=1)
    return summed / count[:, None]


@dataclass
class Timeline:
    path: str
    classes: list[str]
    fps: float
    frame_count: int
    window: int
    stride: int
    frame_step: int
    smooth: int
    windows: list[Window]
    raw: np.ndarray  # (windows, classes) probabilities per window
    probs: np.ndarray  # the same after smoothing: what labels come from
    thumbs: list[tuple[int, np.ndarray]] = field(default_factory=list)
    short: str | None = None  # shorter than one window: how it was filled (--short)

    def seconds(self, frame: float) -> float:
        return frame / self.fps

    @property
    def span(self) -> int:
        """Frames one window covers, first to last (SamplingConfig.span)."""
        return (self.window - 1) * self.frame_step + 1

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps

    def cuts(self) -> np.ndarray:
        """Frame where each window's stretch ends: halfway between neighbouring centres."""
        c = np.array([w.centre for w in self.windows])
        mids = np.ceil((c[:-1] + c[1:]) / 2) if len(c) > 1 else np.array([])
        return np.append(mids, self.frame_count).astype(np.int64)

    def window_of_frame(self, i: int, cuts: np.ndarray | None = None) -> int:
        """The window whose centre is nearest to frame `i` (for overlays); pass `cuts()`
        when asking for many frames."""
        cuts = self.cuts() if cuts is None else cuts
        return min(int(np.searchsorted(cuts, i, side="right")), len(self.windows) - 1)

    def top(self, k: int, row: int | None = None) -> list[tuple[str, float]]:
        """Top-k of one window, or of the whole video (mean over windows)."""
        p = self.probs.mean(axis=0) if row is None else self.probs[row]
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.classes[i], float(p[i])) for i in order]

    def rows(self) -> list[dict]:
        out = []
        for w, p in zip(self.windows, self.probs, strict=True):
            c = int(np.argmax(p))
            out.append({"window": w.index,
                        "start_s": round(self.seconds(w.start_frame), 3),
                        "end_s": round(self.seconds(w.end_frame + 1), 3),
                        "start_frame": w.start_frame, "end_frame": w.end_frame,
                        "label": self.classes[c], "prob": round(float(p[c]), 4)})
        return out

    def segments(self) -> list[dict]:
        """Runs of windows with the same label, cut halfway between window centres."""
        labels = self.probs.argmax(axis=1)
        cuts = self.cuts()
        segs: list[dict] = []
        begin = 0
        for k in range(len(labels)):
            if k + 1 < len(labels) and labels[k + 1] == labels[k]:
                continue
            first = 0 if begin == 0 else int(cuts[begin - 1])
            c = int(labels[k])
            segs.append({"start_s": round(self.seconds(first), 3),
                         "end_s": round(self.seconds(int(cuts[k])), 3),
                         "start_frame": first, "end_frame": int(cuts[k]) - 1,
                         "label": self.classes[c],
                         "prob": round(float(self.probs[begin:k + 1, c].mean()), 4),
                         "windows": k + 1 - begin})
            begin = k + 1
        return segs

    def to_json(self) -> dict:
        return {"path": self.path, "fps": self.fps, "frame_count": self.frame_count,
                "duration_s": round(self.duration, 3), "window": self.window,
                "stride": self.stride, "frame_step": self.frame_step, "smooth": self.smooth,
                "classes": self.classes, "rows": self.rows(), "segments": self.segments(),
                "short": self.short, "probs": np.round(self.probs, 5).tolist(),
                "raw_probs": np.round(self.raw, 5).tolist()}


def compute_timeline(
    predictor,
    path: str | os.PathLike,
    cfg: SamplingConfig,
    stride: int,
    smooth: int = 1,
    thumbnails: int = 6,
    progress: bool = False,
) -> Timeline:
    """Classify every window of `path`; cfg.n_frames is the window, cfg.frame_step the spacing."""
    from vidaction.models.pose_run import is_pose_config
    from vidaction.progress import bar as progress_bar

    if is_pose_config(getattr(predictor, "config", None)):
        return _pose_timeline(predictor, path, cfg.n_frames, stride, smooth, thumbnails)
    with VideoReader(path) as r:
        if r.truncated:
            raise VideoReadError(path, f"truncated: {r.truncated}")
        fps = r.info.fps if r.info.fps > 0 else 25.0
        cfg = cfg.at_rate(r.info.fps)  # --fps: this video's own frame step
        windows = plan_windows(r.frame_count, cfg.n_frames, stride, cfg.frame_step)
        windows, short = _fill_short(windows, r.frame_count, cfg, predictor)
        logits = []
        bar = progress_bar(total=len(windows), desc=Path(path).name[:30], unit="window",
                           enabled=progress)
        with bar:
            for c0 in range(0, len(windows), CHUNK):
                part = windows[c0:c0 + CHUNK]
                clips, _ = read_index_sets(r, [(w.indices, w.mask) for w in part], cfg)
                for b0 in range(0, len(part), BATCH):
                    logits.append(np.asarray(predictor.predict_logits(clips[b0:b0 + BATCH])))
                    check_finite_logits(logits[-1], predictor, path)
                    bar.update(min(BATCH, len(part) - b0))
        thumbs = _thumbnails(r, windows, thumbnails)
        frame_count = r.frame_count
    raw = softmax(np.concatenate(logits, axis=0))
    return Timeline(str(path), list(predictor.classes), fps, frame_count, cfg.n_frames, stride,
                    cfg.frame_step, smooth, windows, raw, moving_average(raw, smooth), thumbs,
                    short)


def _fill_short(windows: list[Window], frame_count: int, cfg: SamplingConfig,
                predictor) -> tuple[list[Window], str | None]:
    """A video shorter than one window: its one window filled as cfg.short says, and how
    (None when nothing was filled, as for a stream model that leaves black frames out)."""
    if len(windows) != 1 or windows[0].mask.all():
        return windows, None
    w = windows[0]
    if cfg.short == "pad":
        return windows, None if getattr(predictor, "drops_padding", False) else "pad"
    idx, mask = clip_indices(0, frame_count, cfg)
    return [replace(w, indices=idx, mask=mask)], cfg.short


def _pose_timeline(predictor, path, window: int, stride: int, smooth: int,
                   thumbnails: int) -> Timeline:
    """A skeleton run's timeline: windows of keypoint samples (the run's rate), each shown
    as the source frames it spans; `window` and `stride` count samples."""
    from vidaction.models import pose_run

    settings = pose_run.pose_settings(predictor.config)
    kp = pose_run.video_keypoints(path, settings)
    fps = kp.fps if kp.fps and kp.fps > 0 else 25.0
    per = fps / settings["fps"]  # source frames per sample
    batch, starts = pose_run.all_windows(pose_run.samples(kp, settings), window, stride)
    windows = []
    for k, s in enumerate(starts):
        idx = np.round((s + np.arange(window)) * per).astype(int)
        end = min(int(round((s + window) * per)), kp.frames) - 1
        windows.append(Window(k, int(idx[0]), max(end, int(idx[0])), idx, idx < kp.frames))
    logits = np.concatenate([np.asarray(predictor.predict_logits(batch[b:b + BATCH]))
                             for b in range(0, len(batch), BATCH)])
    check_finite_logits(logits, predictor, path)
    raw = softmax(logits)
    with VideoReader(path) as r:
        thumbs = _thumbnails(r, windows, thumbnails)
    return Timeline(str(path), list(predictor.classes), fps, kp.frames, window, stride,
                    max(1, int(round(per))), smooth, windows, raw, moving_average(raw, smooth),
                    thumbs)


def _thumbnails(r: VideoReader, windows: list[Window], n: int,
                height: int = 120) -> list[tuple[int, np.ndarray]]:
    """A few frames at window centres, small, for the PNG strip."""
    if n <= 0:
        return []
    picks = sorted({windows[int(round(k))].index
                    for k in np.linspace(0, len(windows) - 1, min(n, len(windows)))})
    frames = sorted({min(int(windows[k].centre), r.frame_count - 1) for k in picks})
    h = min(height, r.info.height)
    w = max(1, round(r.info.width * h / r.info.height))
    imgs = r.read(frames, decode_size=(w, h))
    return list(zip(frames, imgs, strict=True))


def write_timeline(tl: Timeline, prefix: str | os.PathLike) -> list[Path]:
    """PREFIX.csv, PREFIX.json and PREFIX.png, as one set: all three are rendered and
    written to temporaries before any is renamed into place, so a failure (a full disk, a
    plot error) leaves no csv without its json and png."""
    from vidaction.io.writer import write_together

    prefix = Path(prefix)
    paths = [prefix.with_name(prefix.name + ext) for ext in (".csv", ".json", ".png")]
    buf = io.StringIO()
    rows = tl.rows()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = [buf.getvalue(), json.dumps(tl.to_json(), indent=1) + "\n", plot_timeline(tl)]
    return write_together(list(zip(paths, data, strict=True)))


def class_colors(n: int) -> Callable[[int], tuple]:
    """The same class keeps the same colour in every picture of a run."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    if n <= 20:
        return lambda c: cmap(c % cmap.N)
    return lambda c: cmap(c / max(n - 1, 1))


def describe(tl: Timeline) -> str:
    return (f"{len(tl.windows)} window{'s' if len(tl.windows) > 1 else ''} of {tl.window} "
            f"frames (frame step {tl.frame_step}, stride {tl.stride}"
            + (f", smoothed over {tl.smooth} windows" if tl.smooth > 1 else "") + ")")


def _title(tl: Timeline) -> str:
    return f"{Path(tl.path).name}: {describe(tl)}"


def plot_timeline(tl: Timeline) -> bytes:
    """PNG: thumbnails, a band coloured by label over time, and the label probabilities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    color = class_colors(len(tl.classes))
    width = 12.0
    thumb_h = 0.0
    if tl.thumbs:
        th, tw = tl.thumbs[0][1].shape[:2]
        thumb_h = min(1.8, (width * 0.8 / len(tl.thumbs)) * th / tw + 0.2)
    heights = ([thumb_h] if tl.thumbs else []) + [0.7, 2.0]
    legend_rows = math.ceil(len(set(tl.probs.argmax(axis=1).tolist())) / 6)
    fig, axes = plt.subplots(len(heights), 1,
                             figsize=(width, sum(heights) + 1.1 + 0.22 * legend_rows),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes = axes[:, 0]
    dur = tl.duration
    if tl.thumbs:
        ax = axes[0]
        slot = dur / len(tl.thumbs)
        for k, (f, img) in enumerate(tl.thumbs):
            x0 = k * slot + slot * 0.04
            ax.imshow(img, extent=(x0, x0 + slot * 0.92, 0.14, 1), aspect="auto")
            ax.text(x0 + slot * 0.46, 0.07, f"{tl.seconds(f):.1f} s", ha="center",
                    va="center", fontsize=8, color="0.3")
        ax.set_xlim(0, dur)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(_title(tl), fontsize=10)
    band, prob = axes[-2], axes[-1]
    segs = tl.segments()
    for s in segs:
        c = tl.classes.index(s["label"])
        band.axvspan(s["start_s"], s["end_s"], color=color(c), lw=0)
        if (s["end_s"] - s["start_s"]) > dur * 0.06:
            band.text((s["start_s"] + s["end_s"]) / 2, 0.5, s["label"], ha="center",
                      va="center", fontsize=9, color="white", fontweight="bold", clip_on=True)
    if tl.thumbs:  # where the thumbnails were taken
        band.plot([tl.seconds(f) for f, _ in tl.thumbs], [0.93] * len(tl.thumbs), "v",
                  color="black", ms=6, clip_on=False)
    band.set_xlim(0, dur)
    band.set_ylim(0, 1)
    band.set_yticks([])
    band.set_xticklabels([])
    band.set_ylabel("label", rotation=0, ha="right", va="center")
    if not tl.thumbs:
        band.set_title(_title(tl), fontsize=10)

    cuts = np.concatenate([[0], tl.cuts()])
    shown = sorted({int(c) for c in tl.probs.argmax(axis=1)})
    for c in shown:
        xs = np.repeat(cuts / tl.fps, 2)[1:-1]
        ys = np.repeat(tl.probs[:, c], 2)
        prob.plot(xs, ys, color=color(c), lw=1.6, label=tl.classes[c])
    prob.set_xlim(0, dur)
    prob.set_ylim(0, 1.02)
    prob.set_xlabel("time (s)")
    prob.set_ylabel("probability")
    prob.grid(alpha=0.3)
    prob.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, frameon=False,
                ncol=min(6, len(shown)))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
