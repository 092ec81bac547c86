"""How fast the built-in dataset renders: frames/s of render_clip alone and with H.264 encoding.

Run: python bench/render.py [--size 128] [--clips 20]. Writes bench/results/render.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from vidaction.data.builtin import (  # noqa: E402
    BUILTIN_CLASSES,
    render_clip,
    render_dataset,
    sample_actor,
    sample_params,
)
from vidaction.io import write_video  # noqa: E402


def bench(size: int, clips: int, n_frames: int) -> dict:
    cv2.setNumThreads(1)  # one core, as the target says
    jobs = []
    for i in range(clips):
        cls = BUILTIN_CLASSES[i % len(BUILTIN_CLASSES)]
        jobs.append((cls, sample_params(cls, 1000 + i, sample_actor(0, i % 24))))
    render_s = encode_s = 0.0
    frames_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, (cls, params) in enumerate(jobs):
            t0 = time.perf_counter()
            frames, _ = render_clip(cls, params, size, n_frames)
            t1 = time.perf_counter()
            write_video(Path(tmp) / f"{k}.mp4", frames, fps=25,
                        options={"crf": str(params.crf), "threads": "1", "preset": "veryfast"})
            t2 = time.perf_counter()
            render_s += t1 - t0
            encode_s += t2 - t1
            frames_total += len(frames)
    return {"size": size, "clips": clips, "frames": frames_total,
            "render_fps": frames_total / render_s,
            "encode_fps": frames_total / encode_s,
            "render_and_encode_fps": frames_total / (render_s + encode_s)}


def bench_dataset(classes: int, clips_per_class: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        render_dataset(Path(tmp) / "ds", classes=BUILTIN_CLASSES[:classes],
                       clips_per_class=clips_per_class, progress=False, workers=workers)
        dt = time.perf_counter() - t0
    return {"classes": classes, "clips_per_class": clips_per_class, "workers": workers,
            "size": 128, "seconds": 3.0, "fps": 25, "wall_s": dt,
            "clips_per_s": classes * clips_per_class / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    ap.add_argument("--clips", type=int, default=14)
    ap.add_argument("--frames", type=int, default=75)
    ap.add_argument("--dataset", action="store_true",
                    help="also time a full default render (12 classes x 30 clips, 1 and 2 workers)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "render.json")
    args = ap.parse_args()

    rows = [bench(s, args.clips, args.frames) for s in args.sizes]
    print(f"{'size':>6} {'frames':>7} {'render f/s':>11} {'encode f/s':>11} {'both f/s':>9}")
    for r in rows:
        print(f"{r['size']:>6} {r['frames']:>7} {r['render_fps']:>11.0f} {r['encode_fps']:>11.0f}"
              f" {r['render_and_encode_fps']:>9.0f}")
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "one_core": rows}
    if args.dataset:
        result["dataset"] = [bench_dataset(12, 30, w) for w in (1, 2)]
        for d in result["dataset"]:
            print(f"dataset 12 classes x 30 clips, 128px, 3 s, workers={d['workers']}: "
                  f"{d['wall_s']:.1f} s ({d['clips_per_s']:.1f} clips/s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
