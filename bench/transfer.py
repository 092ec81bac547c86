"""Wall time of the reference transfer recipe with and without the feature cache, same run.

The reference recipe (SPEC.md): MoViNet-A0, backbone frozen, 8 frames, batch 8, 2 and 10
epochs. Without the cache every epoch decodes every clip and runs the frozen backbone on
it; with it the backbone runs once per (video, temporal sample) and the epochs train only
the head. Weights are random (no network here): the time of a forward pass does not depend
on the weights' values. Data: the built-in dataset, rendered once into --work.
Targets (issue 5): cache at most 1/2 of the time at 2 epochs and 1/6 at 10 epochs.
Also reports forward latency per clip of movinet-a0 vs movinet-a0-stream.

    python bench/transfer.py [--model movinet-a0] [--epochs 2,10] [--cache-samples 1,4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import vidaction  # noqa: E402  (tf-keras before TensorFlow)

HERE = Path(__file__).parent


def timed_train(data: Path, out: Path, model: str, epochs: int, cache_samples: int,
                features: Path, extra: dict) -> dict:
    from vidaction.train import TrainConfig, train

    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(features, ignore_errors=True)  # each timed run starts cold
    cfg = TrainConfig(data=str(data), out=str(out), model=model, epochs=epochs, batch_size=8,
                      frames=8, frame_step=extra.pop("frame_step"), size=extra.pop("size"),
                      pretrained="none", patience=epochs + 1, cache_samples=cache_samples,
                      feature_cache=str(features), **extra)
    t0 = time.perf_counter()
    train(cfg, progress=False)
    wall = time.perf_counter() - t0
    hist = json.loads((out / "history.json").read_text())
    return {"epochs": epochs, "cache_samples": cache_samples, "wall_s": round(wall, 1),
            "epochs_run": len(hist["epochs"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="movinet-a0")
    ap.add_argument("--epochs", default="2,10", help="comma-separated epoch counts")
    ap.add_argument("--cache-samples", default="1,4", help="K values to time with the cache")
    ap.add_argument("--classes", type=int, default=14, help="built-in classes to use")
    ap.add_argument("--clips-per-class", type=int, default=20)
    ap.add_argument("--size", type=int, default=172)
    ap.add_argument("--frame-step", type=int, default=4)
    ap.add_argument("--conv-impl", help="passed to TrainConfig when it knows the field")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "vidaction-bench"))
    ap.add_argument("--out", default=str(HERE / "results" / "transfer.json"))
    args = ap.parse_args()

    from vidaction.data.builtin import BUILTIN_CLASSES, render_dataset
    from vidaction.models.run import write_json

    work = Path(args.work)
    data = render_dataset(work / f"transfer-data-{args.classes}x{args.clips_per_class}",
                          classes=list(BUILTIN_CLASSES[:args.classes]),
                          clips_per_class=args.clips_per_class, size=128, seconds=2.4, fps=25,
                          seed=0, progress=False)
    extra_base = {"frame_step": args.frame_step, "size": args.size}
    if args.conv_impl:
        extra_base["conv_impl"] = args.conv_impl
    rows = []
    for epochs in (int(e) for e in args.epochs.split(",")):
        for k in [0, *(int(k) for k in args.cache_samples.split(","))]:
            r = timed_train(data, work / "run", args.model, epochs, k, work / "features",
                            dict(extra_base))
            rows.append(r)
            print(f"{args.model} {epochs:>2d} epochs, cache K={k}: {r['wall_s']:.1f} s",
                  flush=True)
    for r in rows:
        base = next(b for b in rows if b["epochs"] == r["epochs"] and b["cache_samples"] == 0)
        r["fraction_of_uncached"] = round(r["wall_s"] / base["wall_s"], 3)
    print(f"\n{'epochs':>6s} {'K':>3s} {'wall s':>8s} {'vs no cache':>12s}")
    for r in rows:
        print(f"{r['epochs']:>6d} {r['cache_samples']:>3d} {r['wall_s']:>8.1f} "
              f"{r['fraction_of_uncached']:>12.3f}")
    latency = []
    if not args.skip_latency:
        sys.path.insert(0, str(HERE))
        from models_latency import VARIANTS, measure

        latency = [measure(n, 8, args.size, 3, impl) for n, impl in VARIANTS]
        for m in latency:
            print(f"forward {m['model']} ({m['conv_impl']}): {m['median_s']:.3f} s per "
                  f"8x{args.size}x{args.size} clip")
    n_clips = args.classes * args.clips_per_class
    result = {"model": args.model, "clips": n_clips, "frames": 8, "size": args.size,
              "batch_size": 8, "rows": rows, "latency": latency,
              "targets": {"2_epochs": 0.5, "10_epochs": round(1 / 6, 3)},
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "vidaction": vidaction.__version__}
    write_json(Path(args.out), result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
