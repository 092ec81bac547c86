"""Transfer from real Kinetics-600 weights, measured: on the built-in dataset, in one run,

- movinet-a0-relu6-stream with the official Kinetics-600 backbone (the int8 TFLite's weights
  imported), frozen, a new head (the reference's recipe; features cached);
- the same architecture from scratch (every layer trained);
- rgb-diff (the quick from-scratch model).

Test split = actors never seen in training (the built-in set assigns actors to splits).
Reports test top-1 (3 clips per video averaged), train wall time and time per clip
(batch 1, the loaded model; also evaluate's wall time per clip scored, which includes
building the model and decoding). Writes
bench/results/transfer_real.json.

    python bench/transfer_real.py [--classes 6] [--clips-per-class 12] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import vidaction  # noqa: E402  (tf-keras before TensorFlow)

HERE = Path(__file__).parent
OFFICIAL = HERE.resolve().parents[1] / "shared" / "models" / \
    "movinet_a0_stream_kinetics600_int8.tflite"


def forward_per_clip(run_dir: Path, data: Path, n: int = 5) -> float:
    """Median seconds of one clip (batch 1) through the trained model, after a warm-up:
    what a clip costs once the model is loaded (evaluate's wall time also builds it)."""
    import statistics

    import numpy as np

    from vidaction import load_run

    run = load_run(run_dir)
    m = run.config["model"]
    clip = np.random.default_rng(0).integers(
        0, 256, (1, int(m["frames"]), int(m["size"]), int(m["size"]), 3), dtype=np.uint8)
    run.predict_logits(clip)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run.predict_logits(clip)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4)


def run_one(label: str, data: Path, out: Path, features: Path, **kw) -> dict:
    from vidaction.evaluate.run import evaluate_run
    from vidaction.train import TrainConfig, train

    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(data=str(data), out=str(out), feature_cache=str(features), **kw)
    t0 = time.perf_counter()
    train(cfg, progress=False)
    train_s = time.perf_counter() - t0
    hist = json.loads((out / "history.json").read_text())
    t0 = time.perf_counter()
    metrics = evaluate_run(out, split="test", clips=3)
    eval_s = time.perf_counter() - t0
    n_videos = int(metrics.get("videos", 0)) or None
    clips_scored = 3 * n_videos if n_videos else None
    forward_s = forward_per_clip(out, data)
    row = {"variant": label, "model": kw["model"], "pretrained": kw.get("pretrained", "none"),
           "frozen_backbone": kw.get("freeze_backbone", True),
           "test_top1": round(float(metrics["top1_accuracy"]), 3),
           "train_wall_s": round(train_s, 1), "epochs_run": len(hist["epochs"]),
           "eval_wall_s": round(eval_s, 1), "test_videos": n_videos,
           "eval_s_per_clip": round(eval_s / clips_scored, 3) if clips_scored else None,
           "forward_s_per_clip": forward_s}
    print(f"{label:48s} test top-1 {row['test_top1']:.3f}  train {row['train_wall_s']:6.1f} s  "
          f"forward {row['forward_s_per_clip']} s/clip", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=6, help="built-in classes to use")
    ap.add_argument("--clips-per-class", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=172, help="A0's native size")
    ap.add_argument("--frame-step", type=int, default=5, help="at 25 fps: A0's 5 fps")
    ap.add_argument("--official", default=str(OFFICIAL))
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=str(HERE / "results" / "transfer_real.json"))
    args = ap.parse_args()

    from vidaction.data.builtin import BUILTIN_CLASSES, render_dataset
    from vidaction.models.run import write_json

    if not Path(args.official).is_file():
        raise SystemExit(f"{args.official}: the official int8 MoViNet file is needed")
    work = Path(args.work or tempfile.mkdtemp(prefix="vidaction-transfer-real-"))
    data = render_dataset(work / f"data-{args.classes}x{args.clips_per_class}",
                          classes=list(BUILTIN_CLASSES[:args.classes]),
                          clips_per_class=args.clips_per_class, size=128, seconds=2.4, fps=25,
                          seed=0, progress=False)
    load = os.getloadavg()
    common = dict(epochs=args.epochs, batch_size=8, frames=8, frame_step=args.frame_step,
                  seed=0)
    rows = [
        run_one("a0 stream, Kinetics-600 backbone frozen + new head", data, work / "k600",
                work / "features", model="movinet-a0-relu6-stream", pretrained=args.official,
                size=args.size, **common),
        run_one("a0 stream (same architecture), from scratch", data, work / "scratch",
                work / "features", model="movinet-a0-relu6-stream", pretrained="none",
                freeze_backbone=False, size=args.size, **common),
        run_one("rgb-diff, from scratch", data, work / "rgbdiff", work / "features",
                model="rgb-diff", pretrained="none", freeze_backbone=False, **common),
    ]
    result = {
        "dataset": {"classes": args.classes, "clips_per_class": args.clips_per_class,
                    "split": "train/val/test by actor (test actors unseen)",
                    "rendered_size": 128, "seconds": 2.4, "fps": 25},
        "epochs_max": args.epochs, "frames": 8, "frame_step": args.frame_step,
        "eval_clips_per_video": 3, "rows": rows,
        "weights": f"{Path(args.official).name} (official int8 TFLite, imported)",
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "vidaction": vidaction.__version__,
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "note": "the 2 CPU cores were shared with other jobs (other helpers' tests and "
                "benches) during this run: wall times are upper bounds"}
    write_json(Path(args.out), result)
    print("\n| model | test top-1 | train wall s | forward s per clip |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['test_top1']:.3f} | {r['train_wall_s']:.0f} | "
              f"{r['forward_s_per_clip']} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
