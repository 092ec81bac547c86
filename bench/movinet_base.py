"""MoViNet base latency per clip on CPU: official 3-D convolutions vs their exact 2-D form.

For movinet-a0, a1 and a2 base at their native resolution (172, 172, 224), 8 frames, batch 1,
600-class head: the same model object run with `conv_impl` "reference" (official grouped
Conv3D, XLA-compiled) and "fast" (movinet_fast: sums of 2-D convolutions), in Keras inside a
tf.function after warm-up, and the fast one converted to TensorFlow Lite (float and int8, run
by the LiteRT interpreter with XNNPack). The reference does not convert; the error is
recorded. Writes bench/results/movinet_base.json (temporary file, then rename).

    python bench/movinet_base.py [--ids a0,a1,a2] [--repeats 5] [--ref-repeats 3]
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

FRAMES = 8
THREADS = 2  # the development machines' cores; LiteRT is told the same


def _time(fn, repeats: int) -> dict:
    fn()  # warm-up (first call traces / compiles)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "repeats": repeats}


def _keras(model, clip, repeats: int) -> tuple[dict, object]:
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False))
    t0 = time.perf_counter()
    logits = forward(clip).numpy()
    first = time.perf_counter() - t0
    return {**_time(lambda: forward(clip).numpy(), repeats), "first_call_s": round(first, 2)}, \
        logits


def _frozen(model, size: int):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([1, FRAMES, size, size, 3], tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(concrete)


def _convert(frozen, int8_samples=None) -> tuple[bytes, float]:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if int8_samples is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in int8_samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    t0 = time.perf_counter()
    flat = converter.convert()
    return flat, time.perf_counter() - t0


def _lite(flat: bytes, clip, repeats: int) -> tuple[dict, object]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=flat, num_threads=THREADS)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], clip)
    out = it.get_output_details()[0]["index"]
    timing = _time(it.invoke, repeats)
    ops = sorted({d["op_name"] for d in it._get_ops_details()})
    return {**timing, "bytes": len(flat), "ops": ops}, it.get_tensor(out)


def measure(model_id: str, repeats: int, ref_repeats: int, try_reference_lite: bool) -> dict:
    import numpy as np

    from vidaction.models import create_model
    from vidaction.models import movinet as mv
    from vidaction.models.movinet_fast import set_conv_impl

    size = mv.RESOLUTION[model_id]
    t0 = time.perf_counter()
    model = create_model(f"movinet-{model_id}", mv.KINETICS600, frames=FRAMES, size=size)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (1, FRAMES, size, size, 3)).astype(np.float32)
    row = {"model": f"movinet-{model_id}", "clip": [1, FRAMES, size, size, 3],
           "build_s": round(build_s, 2)}
    print(f"{model_id}: keras fast", flush=True)
    row["keras_fast"], fast_logits = _keras(model, clip, repeats)
    set_conv_impl(model, "reference")
    print(f"{model_id}: keras reference", flush=True)
    row["keras_reference"], ref_logits = _keras(model, clip, ref_repeats)
    row["keras_max_abs_diff"] = float(np.abs(fast_logits - ref_logits).max())
    if try_reference_lite:
        print(f"{model_id}: tflite reference (expected to fail)", flush=True)
        try:
            _convert(_frozen(model, size))
            row["tflite_reference"] = "converted"
        except Exception as e:  # noqa: BLE001  (the converter's error is the result)
            lines = [ln for ln in str(e).splitlines() if "error:" in ln]
            row["tflite_reference"] = (f"{type(e).__name__}: "
                                       f"{lines[0].split('error:', 1)[1].strip()}" if lines
                                       else f"{type(e).__name__}: {str(e)[:200]}")
    set_conv_impl(model, "fast")
    print(f"{model_id}: tflite float / int8", flush=True)
    frozen = _frozen(model, size)
    flat, convert_s = _convert(frozen)
    row["tflite_float"], lite_logits = _lite(flat, clip, repeats)
    row["tflite_float"]["convert_s"] = round(convert_s, 1)
    row["tflite_float"]["max_abs_diff_vs_keras"] = float(np.abs(lite_logits - fast_logits).max())
    samples = [rng.integers(0, 256, clip.shape).astype(np.float32) for _ in range(2)]
    q, convert_s = _convert(frozen, int8_samples=samples)
    row["tflite_int8"], q_logits = _lite(q, clip, repeats)
    row["tflite_int8"]["convert_s"] = round(convert_s, 1)
    row["tflite_int8"]["max_abs_diff_vs_keras"] = float(np.abs(q_logits - fast_logits).max())
    ref_s = row["keras_reference"]["median_s"]
    row["speedup_keras"] = round(ref_s / row["keras_fast"]["median_s"], 1)
    row["speedup_tflite_float"] = round(ref_s / row["tflite_float"]["median_s"], 1)
    row["speedup_tflite_int8"] = round(ref_s / row["tflite_int8"]["median_s"], 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", default="a0,a1,a2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ref-repeats", type=int, default=3)
    ap.add_argument("--note", default="", help="free text for the JSON (e.g. machine load)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "movinet_base.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    ids = [i.strip() for i in args.ids.split(",") if i.strip()]
    rows = [measure(mid, args.repeats, args.ref_repeats, try_reference_lite=(k == 0))
            for k, mid in enumerate(ids)]
    load_after = os.getloadavg()
    print(f"{'model':12s} {'input':>9s} {'keras ref s':>12s} {'keras fast s':>13s} "
          f"{'tflite f32 s':>13s} {'tflite int8 s':>14s} {'x keras':>8s}")
    for r in rows:
        print(f"{r['model']:12s} {r['clip'][2]:>9d} {r['keras_reference']['median_s']:>12.3f} "
              f"{r['keras_fast']['median_s']:>13.4f} {r['tflite_float']['median_s']:>13.4f} "
              f"{r['tflite_int8']['median_s']:>14.4f} {r['speedup_keras']:>7.1f}x")
    result = {
        "device": "cpu", "cpus": os.cpu_count(), "tflite_threads": THREADS,
        "machine": platform.processor() or platform.machine(),
        "vidaction": vidaction.__version__, "frames": FRAMES, "batch": 1,
        "weights": "random (latency does not depend on the values)",
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "shared_machine": ("other jobs were running: load average above the core count, so "
                           "every figure is slower than on an idle machine")
        if max(load_before[0], load_after[0]) > (os.cpu_count() or 1) else "idle",
        "note": args.note, "wall_s": round(time.perf_counter() - t0, 1), "rows": rows,
    }
    from vidaction.models.run import write_json

    out = Path(args.out)
    write_json(out, result)  # temporary name, then rename
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
