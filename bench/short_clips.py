"""How to fill a clip from a video shorter than it spans: pad, loop or stretch (`--short`).

A clip of 8 frames 7 apart spans 50 frames. On the built-in dataset (6 classes, low
variation, 48 px, rgb-diff from scratch):

A. one model trained on whole 60-frame clips; its test videos cut to their first L frames
   (L < 50: every clip runs past the end), scored with 3 evenly spaced clips per video, as
   `evaluate` does, once per mode. This is `predict` on a short video.
B. rendered 1.2 s clips (30 frames, all short), trained and tested with each mode: a
   dataset of short videos.

Cutting a video to L frames is done by reading its first L frames only (clip_indices with
frame_count L), the same frames a file of L frames would give.

    python bench/short_clips.py [--work DIR] [--epochs 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU numbers

import numpy as np  # noqa: E402

import vidaction  # noqa: E402, F401  (tf-keras before TensorFlow)

CLASSES = ["clap", "jumping_jacks", "sit_down", "squats", "stand_up", "wave_one_hand"]
DATA = dict(classes=CLASSES, clips_per_class=20, size=48, fps=25, seed=0, variation="low")
TRAIN = dict(model="rgb-diff", frames=8, frame_step=7, size=48, batch_size=8,
             pretrained="none", patience=100, augment=False)
MODES = ("pad", "loop", "stretch")
LENGTHS = (12, 25, 38)


def _test_videos(data: Path):
    from vidaction.data.sources import load_dataset

    ds = load_dataset(data)
    return ds.split("test"), ds.classes


def cut_accuracy(run_dir: Path, data: Path, length: int | None, mode: str) -> float:
    """Top-1 on the test split, each video cut to its first `length` frames (None: whole)."""
    from vidaction import load_run
    from vidaction.data.sampling import clip_indices, eval_starts, read_index_sets
    from vidaction.io import VideoReader
    from vidaction.models.predictor import sampling_config
    from vidaction.models.scoring import average_clips

    run = load_run(run_dir)
    cfg = dataclasses.replace(sampling_config(run), short=mode)
    videos, classes = _test_videos(data)
    right = 0
    for v in videos:
        with VideoReader(v.path) as r:
            n = min(r.frame_count, length) if length else r.frame_count
            pairs = [clip_indices(s, n, cfg) for s in eval_starts(n, cfg, 3)]
            clips, _ = read_index_sets(r, pairs, cfg)
        probs = average_clips(np.asarray(run.predict_logits(clips)))
        right += int(np.argmax(probs) == run.classes.index(classes[v.label]))
    return right / len(videos)


def train_one(data: Path, out: Path, epochs: int, short: str) -> float:
    from vidaction.train import TrainConfig, train

    t = time.perf_counter()
    train(TrainConfig(data=str(data), out=str(out), epochs=epochs, short=short, **TRAIN),
          progress=False)
    return time.perf_counter() - t


def main() -> None:
    from vidaction.data.builtin import render_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", help="keep data and runs here (default: a temporary folder)")
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="short-clips-"))
    t0 = time.perf_counter()
    full, short = work / "data-2.4s", work / "data-1.2s"
    render_dataset(full, seconds=2.4, progress=False, **DATA)
    render_dataset(short, seconds=1.2, progress=False, **DATA)
    results: dict = {"A_cut_test_videos": {}, "B_short_dataset": {}}

    secs = train_one(full, work / "run-full", args.epochs, "pad")
    a = {"train_s": round(secs, 1), "whole_60_frames": cut_accuracy(work / "run-full", full,
                                                                    None, "pad")}
    for length in LENGTHS:
        a[f"first_{length}_frames"] = {m: cut_accuracy(work / "run-full", full, length, m)
                                       for m in MODES}
    results["A_cut_test_videos"] = a
    for m in MODES:
        secs = train_one(short, work / f"run-short-{m}", args.epochs, m)
        results["B_short_dataset"][m] = {
            "accuracy": cut_accuracy(work / f"run-short-{m}", short, None, m),
            "train_s": round(secs, 1)}
    out = {
        "what": __doc__.split("\n\n")[0],
        "data": DATA, "train": {**TRAIN, "epochs": args.epochs}, "span_frames": 50,
        "test_videos": len(_test_videos(full)[0]), "chance": 1 / len(CLASSES),
        "results": results,
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "note": "CPU shared with other jobs: times are indicative only",
        "total_s": round(time.perf_counter() - t0, 1),
    }
    dest = Path(__file__).parent / "results" / "short_clips.json"
    dest.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
