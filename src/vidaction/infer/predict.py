"""`vidaction predict`: top-k labels for videos, GIFs, folders and globs.

A video's verdict is the mean of the softmax probabilities of K evenly spaced clips (K=3 by
default, as `vidaction evaluate` scores test videos): one clip sees only part of a video and
the reference's single random clip gave a different answer on every call; three fixed clips
cover start, middle and end and give the same answer every time. Probabilities, not logits,
are averaged so that one over-confident clip cannot outvote the others.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from vidaction.data.sampling import SamplingConfig, eval_starts, read_clips
from vidaction.errors import UserError
from vidaction.infer.inputs import (
    Input,
    each_input,
    inputs_and_overlay,
    per_input,
)
from vidaction.io import VideoReader, VideoReadError
from vidaction.io.writer import refuse_existing
from vidaction.models.scoring import NonFiniteOutput, nonfinite_weight
from vidaction.progress import counted

DEFAULT_CLIPS = 3


@dataclass
class VideoPrediction:
    path: str
    probs: np.ndarray  # (classes,) mean over clips
    clips: int  # clips averaged
    frame_count: int
    fps: float
    width: int
    height: int
    short: str | None = None  # shorter than one clip spans: how it was filled (--short)
    span: int = 0  # frames one clip spans, for the warning

    def top(self, classes: list[str], k: int) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(classes[i], float(self.probs[i])) for i in order]


def predict_video(predictor, path: str | os.PathLike, cfg: SamplingConfig,
                  clips: int = DEFAULT_CLIPS) -> VideoPrediction:
    """Mean softmax of `clips` evenly spaced clips: the same clips and the same average as
    `vidaction evaluate`, so both give a video the same verdict."""
    from vidaction.models.pose_run import is_pose_config
    from vidaction.models.scoring import average_clips, check_finite_logits

    if is_pose_config(getattr(predictor, "config", None)):  # skeleton run: keypoint windows
        return _predict_pose(predictor, path, clips)
    with VideoReader(path) as r:
        if r.truncated:  # as `data check`: a file cut short is reported, not half-read
            raise VideoReadError(path, f"truncated: {r.truncated}")
        cfg = cfg.at_rate(r.info.fps)  # --fps: this video's own frame step
        starts = eval_starts(r.frame_count, cfg, clips)
        if len(set(starts)) == 1:  # a video no longer than one clip: one clip, not 3 copies
            starts = starts[:1]
        batch, _ = read_clips(r, starts, cfg)
        info = r.info
    logits = np.asarray(predictor.predict_logits(batch))
    check_finite_logits(logits, predictor, path)
    probs = average_clips(logits)
    short = cfg.short if cfg.is_short(info.frame_count) else None
    if short == "pad" and getattr(predictor, "drops_padding", False):
        short = None  # a stream model that leaves the black frames out: nothing was filled
    return VideoPrediction(str(path), probs, len(starts), info.frame_count, info.fps,
                           info.width, info.height, short, cfg.span)


def short_warning(pred: VideoPrediction) -> str | None:
    """One line for a video shorter than a clip: its verdict rests on filled frames."""
    return short_line(pred.path, pred.frame_count, pred.span, pred.short)


def short_line(path: str | os.PathLike, frame_count: int, span: int,
               short: str | None) -> str | None:
    """The line for a video of `frame_count` frames filled as `short` to `span` (None: not)."""
    from vidaction.data.sampling import SHORT_HELP

    if short is None:
        return None
    return (f"{path}: {counted(frame_count, 'frame')}, shorter than the {span} one "
            f"clip spans; {SHORT_HELP[short]} (--short loop|pad|stretch)")


def _warn(line: str | None) -> None:
    if line:
        from vidaction.progress import write

        write(f"vidaction: warning: {line}")


def _predict_pose(predictor, path: str | os.PathLike, clips: int) -> VideoPrediction:
    """A skeleton run: `clips` evenly spaced keypoint windows, as `evaluate` takes them."""
    from vidaction.models import pose_run
    from vidaction.models.scoring import average_clips, check_finite_logits

    settings = pose_run.pose_settings(predictor.config)
    kp = pose_run.video_keypoints(path, settings)
    windows = pose_run.eval_windows(pose_run.samples(kp, settings), settings["frames"], clips)
    logits = np.asarray(predictor.predict_logits(windows))
    check_finite_logits(logits, predictor, path)
    return VideoPrediction(str(path), average_clips(logits), len(windows), kp.frames, kp.fps,
                           kp.width, kp.height)


def _fmt_top(top: list[tuple[str, float]], indent: str = "  ") -> str:
    width = max(len(label) for label, _ in top)
    return "\n".join(f"{indent}{i + 1}. {label:<{width}}  {p * 100:5.1f}%"
                     for i, (label, p) in enumerate(top))


def _fmt_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    cells = [[str(r[c]) if not isinstance(r[c], float) else
              (f"{r[c] * 100:.1f}%" if c == "prob" else f"{r[c]:.2f}") for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  " + "  ".join(c.rjust(w) if c != "label" else c.ljust(w)
                              for c, w in zip(cols, widths, strict=True))]
    for row in cells:
        lines.append("  " + "  ".join(v.ljust(w) if c == "label" else v.rjust(w)
                                      for c, v, w in zip(cols, row, widths, strict=True)))
    return "\n".join(lines)


TopFor = Callable[[int], list[tuple[str, float]]]  # frame index -> labels to draw on it


def _predict_one(predictor, path: Path, cfg: SamplingConfig, clips: int,
                 k: int) -> tuple[dict, list[str], TopFor]:
    pred = predict_video(predictor, path, cfg, clips)
    top = pred.top(list(predictor.classes), k)
    record = {"path": str(path), "top": [{"label": lab, "prob": round(p, 5)} for lab, p in top],
              "clips": pred.clips, "frames": pred.frame_count, "fps": pred.fps,
              "width": pred.width, "height": pred.height,
              # shorter than one clip: frames were filled in (how: "short")
              "padded": pred.short is not None, "short": pred.short}
    _warn(short_warning(pred))
    dur = pred.frame_count / pred.fps if pred.fps else 0.0
    text = [f"{path}  ({counted(pred.frame_count, 'frame')}, {dur:.2f} s, "
            f"{counted(pred.clips, 'clip')} averaged)", _fmt_top(top)]
    return record, text, lambda i: top


@dataclass
class Outputs:
    """The files one input's prediction writes, named before the model loads."""

    timeline: Path | None = None  # PREFIX of PREFIX.csv/.json/.png
    overlay: Path | None = None

    def paths(self) -> list[Path]:
        return ([] if self.timeline is None else timeline_paths(self.timeline)) + \
            ([] if self.overlay is None else [self.overlay])


def _plan_outputs(files: list[Input], overlay: str | None, timeline: bool,
                  out_prefix: str | None, many: bool, taken: set[str]) -> dict[int, Outputs]:
    """{id(input): its Outputs}, names made unique across inputs, in input order."""
    plan = {}
    for it in files:
        o = Outputs()
        if timeline and out_prefix is None:  # <name>_timeline, _2 for a second a/x, b/x
            o.timeline, k = Path(f"{it.path.stem}_timeline"), 2
            while str(o.timeline) in taken:
                o.timeline, k = Path(f"{it.path.stem}_timeline_{k}"), k + 1
            taken.add(str(o.timeline))
        elif timeline:
            o.timeline = per_input(Path(out_prefix), it.path, many, taken)
        if overlay:
            o.overlay = per_input(Path(overlay), it.path, many, taken)
        plan[id(it)] = o
    return plan


def timeline_paths(prefix: Path) -> list[Path]:
    return [prefix.with_name(prefix.name + ext) for ext in (".csv", ".json", ".png")]


def _timeline_one(predictor, path: Path, cfg: SamplingConfig, stride: int, smooth: int, k: int,
                  prefix: Path, progress: bool) -> tuple[dict, list[str], TopFor]:
    from vidaction.infer.timeline import compute_timeline, describe, write_timeline

    tl = compute_timeline(predictor, path, cfg, stride, smooth=smooth, progress=progress)
    written = write_timeline(tl, prefix)
    top = tl.top(k)
    record = {"path": str(path), "top": [{"label": lab, "prob": round(p, 5)} for lab, p in top],
              "frames": tl.frame_count, "fps": tl.fps, "duration_s": round(tl.duration, 3),
              "windows": len(tl.windows), "window": tl.window, "stride": tl.stride,
              "frame_step": tl.frame_step, "smooth": smooth, "timeline": tl.rows(),
              "segments": tl.segments(), "files": [str(p) for p in written],
              "padded": tl.short is not None, "short": tl.short}
    _warn(short_line(path, tl.frame_count, tl.span, tl.short))
    text = [f"{path}  ({counted(tl.frame_count, 'frame')}, {tl.duration:.2f} s; {describe(tl)})",
            _fmt_table(tl.rows()),
            "  whole video: " + ", ".join(f"{lab} {p * 100:.1f}%" for lab, p in top[:3]),
            f"  written: {', '.join(str(p) for p in written)}"]
    cuts = tl.cuts()
    return record, text, lambda i: tl.top(k, tl.window_of_frame(i, cuts))


def predict_command(
    run: str | os.PathLike,
    inputs: Sequence[str],
    top_k: int = 5,
    clips: int = DEFAULT_CLIPS,
    as_json: bool = False,
    overlay: str | None = None,
    timeline: bool = False,
    window: int | None = None,
    stride: int | None = None,
    frame_step: int | None = None,
    smooth: int = 1,
    out_prefix: str | None = None,
    progress: bool = True,
    force: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    fps: float | None = None,
    weights: str | os.PathLike | None = None,
    short: str | None = None,
) -> int:
    """Predict every input; a bad one gets one error line and the rest go on. Returns the
    exit status: 1 if any input failed. `fps` samples clips and windows at that many frames
    per second of each video (in place of the run's spacing); `weights` is a local copy of
    a pretrained classifier's file (`kinetics600`); `short` how to fill a video shorter
    than a clip (default: the run's). An existing overlay or timeline file is refused,
    before the model loads, unless `force`."""
    from dataclasses import replace

    from vidaction.infer.overlay import overlay_video
    from vidaction.models.predictor import (
        check_predictor_path,
        fixed_frames,
        load_predictor,
        sampling_config,
    )
    from vidaction.progress import bar as progress_bar

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if not timeline:
        given = [f for f, v in (("--window", window), ("--stride", stride),
                                ("--frame-step", frame_step), ("--out", out_prefix)) if v]
        if given or smooth > 1:
            raise UserError(f"{', '.join(given or ['--smooth'])} only apply with --timeline")
    items, files, many = inputs_and_overlay(inputs, overlay)

    if fps and frame_step:
        raise UserError("--fps and --frame-step exclude each other")
    taken: set[str] = set()
    plan = _plan_outputs(files, overlay, timeline, out_prefix, many, taken)
    refuse_existing([p for item in plan.values() for p in item.paths()], force)
    if not files:  # nothing to predict: each input's line, without loading the model
        for it in items:
            print(f"vidaction: error: {it.error}", file=stderr, flush=True)
            if as_json:
                print(json.dumps({"path": str(it.path), "error": it.error}), file=stdout,
                      flush=True)
        return 1
    check_predictor_path(run)  # a wrong folder in one line, before "loading"
    if progress:  # seconds (TensorFlow and the weights) before the first line
        print(f"vidaction: loading model {run} ...", file=stderr, flush=True)
    predictor = load_predictor(run, weights=weights)
    classes = list(predictor.classes)
    k = min(top_k, len(classes))
    cfg = sampling_config(predictor)
    if short:
        cfg = replace(cfg, short=short)
    if fps:
        cfg = replace(cfg, fps=fps)
    elif frame_step:  # a frame step given replaces the run's rate too
        cfg = replace(cfg, fps=None)
    if timeline:
        cfg = replace(cfg, n_frames=window or cfg.n_frames,
                      frame_step=frame_step or cfg.frame_step)
        stride = stride or cfg.n_frames
        need = fixed_frames(predictor)
        if need and cfg.n_frames != need:
            raise UserError(f"--window {cfg.n_frames}: this model takes exactly {need} frames "
                            f"per clip; use --window {need} (and --stride to overlap windows)")

    def work(it: Input) -> tuple[dict, list[str]]:
        outputs = plan[id(it)]
        if timeline:
            record, text, top_for = _timeline_one(predictor, it.path, cfg, stride, smooth,
                                                  k, outputs.timeline, progress)
        else:
            record, text, top_for = _predict_one(predictor, it.path, cfg, clips, k)
        if overlay:
            dest = outputs.overlay
            n = overlay_video(it.path, dest, top_for)
            record["overlay"] = str(dest)
            text.append(f"  overlay: {dest} ({counted(n, 'frame')})")
        return record, text

    def broken_model(e: Exception) -> bool:
        # the model is broken, not this input: one line, not one per input
        return isinstance(e, NonFiniteOutput) and bool(nonfinite_weight(predictor))

    bar = progress_bar(total=len(items), desc="predict", unit="video",
                       enabled=progress and len(items) >= 2)
    return each_input(items, work, bar, as_json, stdout, stderr, fatal=broken_model)
