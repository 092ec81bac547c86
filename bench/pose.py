"""Pose: estimator speed and the effect of crop tracking (this part), and the skeleton
classifier against rgb-diff (the classifier part).

Estimator part, on the shared real clips (../shared/media/real) with the shared official
models (../shared/models), LiteRT with 2 threads:
- frames/s of the pose model alone (frames decoded beforehand) and end to end (decoding
  included), with and without tracking: for the model the 10th percentile and the median
  frame over 3 passes (the machine is shared; fast frames estimate an idle one), with decoding
  the best and the median of 3 whole passes;
- mean keypoint score per clip with tracking (the MoveNet tutorial's crop from the previous
  frame's keypoints) and without (the whole frame, letterboxed, every time).

Writes its sections into bench/results/pose.json, keeping the sections other parts wrote.

    python bench/pose.py [--models movenet,blazepose] [--threads 2] [--part estimator]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import vidaction  # noqa: E402, F401  (tf-keras before TensorFlow)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIA = Path(os.environ.get("VIDACTION_TEST_MEDIA") or SHARED / "media" / "real")
MODELS = Path(os.environ.get("VIDACTION_TEST_MODELS") or SHARED / "models")
RESULTS = ROOT / "bench" / "results" / "pose.json"
WEIGHTS = {"movenet": MODELS / "movenet_singlepose_lightning_int8_4.tflite",
           "blazepose": MODELS / "blazepose", "blazepose-full": MODELS / "blazepose"}
# speed on three frame sizes (426x240, 794x710, 1920x1080)
SPEED_CLIPS = ("flipping_a_pancake.mkv", "jumping_jacks.mp4", "S001C001P001R001A001_rgb.avi")


def real_clips() -> list[Path]:
    from vidaction.io import VIDEO_EXTENSIONS

    return sorted(p for p in MEDIA.glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)


# ---- estimator part -----------------------------------------------------------------------

def model_speed(model: str, clip: Path, threads: int, track: bool, repeat: int = 3) -> dict:
    """Frames/s of the pose model alone on decoded frames (crop and resize included) over
    `repeat` passes: the 10th percentile frame time (other jobs on the shared machine only
    ever slow a frame down, so the fast frames estimate an idle machine) and the median; and
    end to end with decoding (VideoReader opened and read in order, as `estimate_video`):
    the best and the median of `repeat` whole passes."""
    from vidaction.data.pose import PoseTracker
    from vidaction.io import VideoReader

    with VideoReader(clip) as r:
        frames = list(r.iter_frames())
        info = r.info
    tracker = PoseTracker(model, WEIGHTS[model], track=track, threads=threads)
    for f in frames[:5]:  # warm-up: XNNPack packs its weights on the first calls
        tracker.step(f)
    alone, e2e = [], []
    for _ in range(repeat):
        tracker.reset()
        for f in frames:
            t0 = time.perf_counter()
            tracker.step(f)
            alone.append(time.perf_counter() - t0)
    del frames
    for _ in range(repeat):  # decoding runs in FFmpeg's threads: whole passes, not frames
        tracker.reset()
        t0 = time.perf_counter()
        with VideoReader(clip) as r:
            n = sum(1 for f in r.iter_frames() if tracker.step(f) is not None)
        e2e.append((time.perf_counter() - t0) / n)

    def fps(times: list[float], q: float) -> float:
        return round(1 / float(np.quantile(times, q)), 1)

    return {"clip": clip.name, "size": f"{info.width}x{info.height}",
            "frames": info.frame_count, "repeat": repeat,
            "model_fps": fps(alone, 0.1), "model_fps_median": fps(alone, 0.5),
            "end_to_end_fps": round(1 / min(e2e), 1),
            "end_to_end_fps_median": fps(e2e, 0.5)}


def tracking_table(model: str, threads: int) -> list[dict]:
    """Mean keypoint score per real clip, with and without tracking."""
    from vidaction.data.pose import estimate_video

    rows = []
    for clip in real_clips():
        row = {"clip": clip.name}
        for track in (False, True):
            kp = estimate_video(clip, model, WEIGHTS[model], track=track, threads=threads)
            s = kp.points[..., 2]
            key = "tracked" if track else "whole_frame"
            row[f"{key}_mean_score"] = round(float(s.mean()), 3)
            row[f"{key}_visible"] = round(float((s >= 0.3).mean()), 3)
        rows.append(row)
    return rows


def estimator_part(models: list[str], threads: int) -> dict:
    out: dict = {}
    for model in models:
        speed = [{"track": track, **model_speed(model, MEDIA / name, threads, track)}
                 for name in SPEED_CLIPS for track in (True, False)]
        table = tracking_table(model, threads)
        mean = {k: round(float(np.mean([r[k] for r in table])), 3)
                for k in ("whole_frame_mean_score", "tracked_mean_score")}
        out[model] = {"speed": speed, "tracking": table, "tracking_mean_over_clips": mean}
        print(f"\n{model}: frames/s with {threads} threads; model: 10th percentile frame "
              "(median frame); +decode: best pass (median pass)")
        print(f"  {'clip':<32} {'size':>10} {'track':>6} {'model':>15} {'+decode':>15}")
        for r in speed:
            print(f"  {r['clip']:<32} {r['size']:>10} {str(r['track']):>6} "
                  f"{r['model_fps']:>7} ({r['model_fps_median']:>5}) "
                  f"{r['end_to_end_fps']:>7} ({r['end_to_end_fps_median']:>5})")
        print(f"{model}: mean keypoint score (share of joints >= 0.3)")
        print(f"  {'clip':<32} {'whole frame':>18} {'tracked':>18}")
        for r in table:
            print(f"  {r['clip']:<32} {r['whole_frame_mean_score']:>8.3f} "
                  f"({r['whole_frame_visible']:.2f})   {r['tracked_mean_score']:>8.3f} "
                  f"({r['tracked_visible']:.2f})")
        print(f"  {'mean over clips':<32} {mean['whole_frame_mean_score']:>8.3f}"
              f"{'':>11}{mean['tracked_mean_score']:>8.3f}")
    return out


# ---- results file -----------------------------------------------------------------------------

# ---- classifier part ----------------------------------------------------------------------
# The skeleton models against rgb-diff, all trained from scratch on the same rendered clips
# (all 14 classes, the "pose" variation: larger figures, real-people movements; 256 px, 3 s
# at 10 frames/s, the skeleton rate), scored on the test split (unseen actors) and on the
# shared real clips (only jumping_jacks.mp4 is one of the built-in classes).

POSE_DATA = dict(clips_per_class=20, size=256, seconds=3.0, fps=10, seed=0, variation="pose")
POSE_RUNS = {
    "pose-stats": dict(model="pose-stats", epochs=80, batch_size=16, patience=15),
    "pose-tcn": dict(model="pose-tcn", epochs=80, batch_size=16, patience=15),
    # rgb-diff as the demo trains it (40 epochs there), 8 frames 3 apart (24 of the 30)
    "rgb-diff": dict(model="rgb-diff", epochs=60, frames=8, frame_step=3, size=48,
                     batch_size=8, augment=True, patience=100),
}


def _pair_scores(probs: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict:
    """Top-1, and on the direction pairs as bench/models_accuracy.py reports them."""
    sys.path.insert(0, str(ROOT / "bench"))
    from models_accuracy import PAIRS

    pred = probs.argmax(1)
    idx = {c: i for i, c in enumerate(classes)}
    on_pairs, within = [], []
    for a, b in PAIRS:
        ia, ib = idx[a], idx[b]
        for k in np.flatnonzero((truth == ia) | (truth == ib)):
            on_pairs.append(pred[k] == truth[k])
            within.append((ia if probs[k, ia] >= probs[k, ib] else ib) == truth[k])
    return {"accuracy": float((pred == truth).mean()),
            "pairs_accuracy": float(np.mean(on_pairs)),
            "within_pair_accuracy": float(np.mean(within))}


def _score_run(run_dir: Path, data: Path) -> dict:
    """Test split (3 evenly spaced clips or windows per video, softmax averaged, as
    `evaluate`), and top-3 on each shared real clip."""
    from vidaction import load_run
    from vidaction.data.sources import load_dataset
    from vidaction.infer.predict import predict_video
    from vidaction.models.predictor import sampling_config

    run = load_run(run_dir)
    test = load_dataset(data).split("test")
    cfg = sampling_config(run)
    probs = np.stack([predict_video(run, c.path, cfg, 3).probs for c in test])
    out = {"test_videos": len(test),
           **_pair_scores(probs, np.array([c.label for c in test]), run.classes)}
    real = {}
    for clip in real_clips():
        top = predict_video(run, clip, cfg, 3).top(run.classes, 3)
        real[clip.name] = [[c, round(p, 3)] for c, p in top]
    out["real"] = real
    return out


def classifier_part(work: Path, runs: list[str], weights: Path) -> dict:
    from vidaction.data.builtin import render_dataset
    from vidaction.data.pose import PoseTracker, cached_keypoints
    from vidaction.data.sources import load_dataset
    from vidaction.train import TrainConfig, train

    os.environ.setdefault("VIDACTION_CACHE", str(work / "cache"))
    t0 = time.perf_counter()
    data = render_dataset(work / "data-pose256", progress=False, workers=2, **POSE_DATA)
    render_s = time.perf_counter() - t0
    # keypoints of every clip once (the skeleton runs then read the cache), timed apart
    t0 = time.perf_counter()
    tracker = PoseTracker("movenet", str(weights), True)
    clips = load_dataset(data).clips
    for c in clips:
        cached_keypoints(c.path, tracker=tracker)
    keypoints_s = time.perf_counter() - t0
    rows = []
    for key in runs:
        cfg = dict(POSE_RUNS[key])
        t0 = time.perf_counter()
        run = train(TrainConfig(data=str(data), out=str(work / "runs" / key), seed=0,
                                pretrained="none", pose_weights=str(weights),
                                clip_cache=str(work / "clip-cache"), **cfg),
                    force=True, progress=False)
        train_s = time.perf_counter() - t0
        history = json.loads((run / "history.json").read_text())["epochs"]
        row = {"run": key, **cfg, "train_s": round(train_s, 1), "epochs_run": len(history),
               **_score_run(run, data)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"data": {**POSE_DATA, "classes": 14, "clips": len(clips)},
            "render_s": round(render_s, 1),
            "keypoints_s": round(keypoints_s, 1),
            "keypoints_note": "MoveNet with crop tracking over every clip once, before the "
                              "skeleton runs (they read the cache; their train_s excludes it)",
            "chance": round(1 / 14, 3), "results": rows}


def update_results(sections: dict) -> None:
    """Merge `sections` into bench/results/pose.json, keeping what other parts wrote."""
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    old.update(sections)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old, indent=1) + "\n")
    print(f"\nwritten {RESULTS}")


def machine(threads: int) -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": threads, "python": sys.version.split()[0],
            "note": "shared machine (load 5-9 on 2 cores): other jobs ran at the same "
                    "time; medians vary up to 2x between runs, the fast-frame figures less",
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="movenet,blazepose")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--part", default="estimator", choices=["estimator", "classifier"],
                    help="estimator speed/tracking, or the skeleton classifier vs rgb-diff")
    ap.add_argument("--runs", default=",".join(POSE_RUNS), help="classifier part: keys of "
                                                                 "POSE_RUNS")
    ap.add_argument("--work", help="classifier part: folder for data, runs and caches "
                                   "(default: a temp dir)")
    args = ap.parse_args()
    if not real_clips():
        sys.exit(f"no real clips in {MEDIA}")
    if args.part == "estimator":
        est = estimator_part([m for m in args.models.split(",") if m], args.threads)
        update_results({"estimator": est, "estimator_machine": machine(args.threads)})
    if args.part == "classifier":
        import tempfile

        work = Path(args.work or tempfile.mkdtemp(prefix="vidaction-pose-"))
        res = classifier_part(work, [r for r in args.runs.split(",") if r], WEIGHTS["movenet"])
        old = json.loads(RESULTS.read_text()).get("classifier") if RESULTS.is_file() else None
        if old and old.get("data") == res["data"]:  # rows of runs not re-run are kept
            ran = {r["run"] for r in res["results"]}
            res["results"] = [r for r in old["results"] if r["run"] not in ran] + \
                res["results"]
        update_results({"classifier": res, "classifier_machine": machine(args.threads)})


if __name__ == "__main__":
    main()
