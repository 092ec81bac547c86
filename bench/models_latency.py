"""Forward latency per clip on CPU: movinet-a0 (3-D convs) vs movinet-a0-stream ((2+1)D).

SPEC.md reports ~3 s vs ~0.08 s for one 8x224x224 clip on 2 cores; here 8x172x172 (the a0
native size), batch 1, inside a tf.function after warm-up. The base model is timed twice:
with the official 3-D layers (conv_impl "reference", what SPEC.md measured) and with
vidaction's exact 2-D form (conv_impl "fast", the default; see bench/movinet_base.py). Writes
bench/results/models_latency.json (temporary file, then rename).

    python bench/models_latency.py [--frames 8] [--size 172] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU numbers, as in SPEC.md

import vidaction  # noqa: E402  (tf-keras before TensorFlow)

VARIANTS = [("movinet-a0", "reference"), ("movinet-a0", "fast"), ("movinet-a0-stream", "fast")]


def measure(name: str, frames: int, size: int, repeats: int, conv_impl: str = "fast") -> dict:
    import numpy as np
    import tensorflow as tf

    from vidaction.models import count_params, create_model

    t0 = time.perf_counter()
    model = create_model(name, 600, frames=frames, size=size, conv_impl=conv_impl)
    build_s = time.perf_counter() - t0
    forward = tf.function(lambda x: model(x, training=False))
    clip = tf.constant(np.random.default_rng(0).integers(0, 256, (1, frames, size, size, 3),
                                                         dtype=np.uint8))
    t0 = time.perf_counter()
    forward(clip).numpy()  # trace + first run
    warmup_s = time.perf_counter() - t0
    forward(clip).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        forward(clip).numpy()
        times.append(time.perf_counter() - t0)
    return {"model": name, "conv_impl": conv_impl, "params_k600_head": count_params(name),
            "params_as_built": int(model.count_params()), "build_s": round(build_s, 2),
            "first_call_s": round(warmup_s, 2), "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=172)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "models_latency.json"))
    args = ap.parse_args()

    rows = [measure(n, args.frames, args.size, args.repeats, impl) for n, impl in VARIANTS]
    print(f"{'model':20s} {'conv_impl':>10s} {'params':>10s} {'median s/clip':>14s} "
          f"{'min s':>8s}")
    for r in rows:
        print(f"{r['model']:20s} {r['conv_impl']:>10s} {r['params_k600_head']:>10,d} "
              f"{r['median_s']:>14.4f} {r['min_s']:>8.4f}")
    ratio = rows[0]["median_s"] / rows[2]["median_s"]
    fast_ratio = rows[1]["median_s"] / rows[2]["median_s"]
    print(f"base (reference) / stream: {ratio:.1f}x; base (fast) / stream: {fast_ratio:.1f}x")
    result = {"clip": [1, args.frames, args.size, args.size, 3], "device": "cpu",
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "vidaction": vidaction.__version__, "rows": rows,
              "base_over_stream": round(ratio, 2),
              "base_fast_over_stream": round(fast_ratio, 2)}
    from vidaction.models.run import write_json

    out = Path(args.out)
    write_json(out, result)  # temporary name, then rename
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
