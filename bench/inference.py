"""Streaming and export speed on CPU: movinet-a0-stream frame by frame (Keras stream mode,
TFLite float, TFLite int8) at 172x172, movinet-a0 base per clip (Keras, TFLite if it
converts), and resident memory over long streams.

Random-init weights with a 3-class head (no checkpoints offline; speed does not depend on
the weights), except the int8 deployment rows: the official int8 MoViNet-A0-Stream file
against our int8 export of movinet-a0-relu6-stream with its weights imported, and the
hard-swish a0-stream's int8 with and without hard-swish and pooling kept float. int8
calibrates on a few clips of the rendered built-in set. Targets on 2 cores: TFLite float
<= 4 ms/frame, Keras stream <= 6 ms/frame. Also times the Keras step's convolutions alone
(same shapes, one TF graph, nothing else): the floor under any TF-executed step on this
machine. Prints a table and writes bench/results/inference.json.

    python bench/inference.py [--size 172] [--frames 500] [--tflite-memory-frames 10000]
                              [--keras-memory-frames 2000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import vidaction  # noqa: E402  (tf-keras before TensorFlow)

CLASSES = ["clap", "sit_down", "stand_up"]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(call, n: int) -> list[float]:
    """Seconds each of n calls took."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def median_ms(call, n: int) -> float:
    return round(1000 * statistics.median(timed(call, n)), 2)


def per_frame(streamer, frames: np.ndarray, n: int) -> dict:
    streamer.reset()
    for f in frames[:10]:  # warm-up (graph optimisation, XNNPack packing)
        streamer.step(f)
    cycle = itertools.cycle(frames)
    times = timed(lambda: streamer.step(next(cycle)), n)
    ms = 1000 * statistics.median(times)
    return {"ms_per_frame_median": round(ms, 2),
            "ms_per_frame_mean": round(1000 * statistics.fmean(times), 2),
            "frames_per_s": round(1000 / ms, 1), "frames_timed": n}


def invoke_only(streamer, n: int) -> float:
    """The interpreter's own time per frame: a step minus this is the Python side (frame in,
    logits out, the state tensors carried from the outputs back to the inputs)."""
    return median_ms(streamer.interpreter.invoke, n)


def state_carry(streamer, n: int) -> dict:
    """Carrying the state outputs back to the inputs after an invoke, the way the step did
    before (get_tensor + set_tensor: two copies) and the way it does now (view to view: one
    copy), alternating in one run."""
    it = streamer.interpreter
    pairs = [(i, o) for i, o, _ in streamer._pairs]

    def get_set():
        for i, o in pairs:
            it.set_tensor(i, it.get_tensor(o))

    def views():
        for i, o in pairs:
            np.copyto(it.tensor(i)(), it.tensor(o)())

    before, now = [], []
    for _ in range(n):
        it.invoke()
        before += timed(get_set, 1)
        it.invoke()
        now += timed(views, 1)
    b, v = (1000 * statistics.median(t) for t in (before, now))
    return {"state_tensors": len(pairs), "get_set_ms_median": round(b, 3),
            "view_copy_ms_median": round(v, 3), "ratio": round(b / v, 2)}


def conv_floor(step_fn, n: int) -> dict:
    """The stream step's convolutions alone, at their shapes, in one TF graph: the least any
    TF-executed Keras step can cost here, whatever the rest of the graph does."""
    import tensorflow as tf

    ops = [op for op in step_fn.graph.get_operations()
           if op.type in ("Conv2D", "DepthwiseConv2dNative")]
    rng = np.random.default_rng(0)
    args = []
    for op in ops:
        x, w = op.inputs
        args.append((op.type, op.get_attr("strides"), op.get_attr("padding").decode(),
                     tf.constant(rng.standard_normal(x.shape).astype(np.float32)),
                     tf.constant(rng.standard_normal(w.shape).astype(np.float32) * 0.1)))

    @tf.function
    def convs():
        return [tf.nn.conv2d(x, w, st, p) if t == "Conv2D"
                else tf.nn.depthwise_conv2d(x, w, st, p) for t, st, p, x, w in args]

    timed(convs, 10)  # warm-up
    return {"convolutions": len(ops), "ms_median": median_ms(convs, n)}


def memory(streamer, frames: np.ndarray, n: int) -> dict:
    """RSS every n/10 frames of one uninterrupted stream (no reset): flat means no leak."""
    streamer.reset()
    samples = []
    t0 = time.perf_counter()
    for i in range(n):
        streamer.step(frames[i % len(frames)])
        if i % max(1, n // 10) == 0 or i == n - 1:
            samples.append((i + 1, round(rss_mb(), 1)))
    first = samples[1][1] if len(samples) > 2 else samples[0][1]  # after warm-up
    return {"frames": n, "seconds": round(time.perf_counter() - t0, 1),
            "rss_mb": samples, "growth_mb_after_warmup": round(samples[-1][1] - first, 1)}


OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "models" / \
    "movinet_a0_stream_kinetics600_int8.tflite"
REAL = Path(__file__).resolve().parents[2] / "shared" / "media" / "real"


def _real_frames(path: Path, size: int, fps: float = 5.0) -> np.ndarray:
    """A real clip at 5 frames per second of video, centre-cropped (A0's training input)."""
    from vidaction.data.sampling import center_crop
    from vidaction.io import VideoReader

    r = VideoReader(path)
    try:
        info = r.info
        n = max(1, int(info.duration * fps + 1e-6))
        idx = sorted({min(info.frame_count - 1, int(round(k * info.fps / fps)))
                      for k in range(n)})
        return np.stack(list(r.read(idx, transform=lambda f: center_crop(f, size))))
    finally:
        r.close()


class _Official:
    """The official file behind the streamer interface: float frames in [0, 1]."""

    def __init__(self, path: Path, threads: int):
        from vidaction.models.litert import TFLiteStreamer

        self.s = TFLiteStreamer(path, threads)
        self.interpreter = self.s.interpreter

    def reset(self):
        self.s.reset()

    def step(self, frame):
        return self.s.step(frame.astype(np.float32) / 255.0)


def interleaved(streamers: dict, frames: np.ndarray, n: int, block: int = 10) -> dict:
    """Median ms per step of each streamer, timed in alternating blocks of `block` frames so
    a busy machine slows them alike."""
    for s in streamers.values():
        s.reset()
        for f in frames[:10]:
            s.step(f)
    times = {k: [] for k in streamers}
    cycle = itertools.cycle(frames)
    for _ in range(max(1, n // block)):
        for k, s in streamers.items():
            times[k] += timed(lambda s=s: s.step(next(cycle)), block)
    return {k: round(1000 * statistics.median(t), 2) for k, t in times.items()}


def int8_deployment(work: Path, data: Path, frames: np.ndarray, n: int) -> dict:
    """Issue 17 item 6. (a) The official int8 file against our own int8 export of the
    imported ReLU6 / no-SE variant (its Kinetics-600 head kept, calibrated on the rendered
    built-in set), interleaved, 1 and 2 threads, and their top-1 agreement on the shared real
    clips. (b) The hard-swish movinet-a0-stream: float, all-int8 (before) and int8 with
    hard-swish and pooling kept float (the export's default now)."""
    from vidaction.data.sampling import SamplingConfig
    from vidaction.export import export_run
    from vidaction.export import tflite as xt
    from vidaction.models import create_model
    from vidaction.models.kinetics import labels
    from vidaction.models.litert import TFLiteRun
    from vidaction.models.run import Run
    from vidaction.models.tflite_import import kinetics_model

    out: dict = {}
    s = 172
    if OFFICIAL.is_file():
        name = "movinet-a0-relu6-stream"
        # A0's own input: 5 frames per second of video, centre crop
        config = {"model": {"name": name, "frames": 8, "size": s, "num_classes": 600},
                  "sampling": SamplingConfig(8, 3, s, "crop", fps=5.0).as_dict(),
                  "classes": labels(), "train": {"data": str(data)}}
        print("importing the official file, exporting our int8 ...", file=sys.stderr)
        k600 = Run(work / "k600", kinetics_model(OFFICIAL, frames=8, size=s), labels(),
                   config)
        t0 = time.perf_counter()
        ours = export_run(k600, "tflite", work / "ours_k600_int8.tflite", quantize="int8",
                          progress=False)
        export_s = round(time.perf_counter() - t0, 1)
        real_cal = None
        if REAL.is_dir():  # a second export calibrated on real video (in-sample: the same
            cal = work / "real_calibration"  # clips are scored below; links, no copies)
            for clip in sorted(REAL.glob("*")):
                if clip.suffix.lower() in (".mp4", ".avi", ".mkv"):
                    (cal / clip.stem).mkdir(parents=True)
                    (cal / clip.stem / clip.name).symlink_to(clip)
            real_cal = export_run(k600, "tflite", work / "ours_k600_int8_realcal.tflite",
                                  quantize="int8", data=str(cal), progress=False)
        rows = []
        for threads in (2, 1):
            ms = interleaved({"official": _Official(OFFICIAL, threads),
                              "ours": TFLiteRun(ours, threads=threads).streamer()},
                             frames, n)
            if real_cal is not None:
                ms.update(ours_realcal=interleaved(
                    {"x": TFLiteRun(real_cal, threads=threads).streamer()}, frames, n)["x"])
            rows.append({"threads": threads, "official_ms_per_frame": ms["official"],
                         "ours_ms_per_frame": ms["ours"],
                         "ours_over_official": round(ms["ours"] / ms["official"], 3),
                         "ours_real_calibration_ms_per_frame": ms.get("ours_realcal")})
        agree = {}
        if REAL.is_dir():
            from vidaction.models.stream import KerasStreamer, stream_model

            keras = KerasStreamer(stream_model(k600.model, name, s))
            for clip in sorted(REAL.glob("*")):
                if clip.suffix.lower() not in (".mp4", ".avi", ".mkv"):
                    continue
                fr = _real_frames(clip, s)
                last = {}
                for k, st in (("official", _Official(OFFICIAL, 2)),
                              ("ours", TFLiteRun(ours, threads=2).streamer()),
                              ("ours_realcal", TFLiteRun(real_cal, threads=2).streamer()),
                              ("keras", keras)):
                    st.reset()
                    for f in fr:
                        z = st.step(f)
                    last[k] = z
                top5 = {k: set(np.argsort(-z)[:5]) for k, z in last.items()}
                agree[clip.name] = {
                    "frames": len(fr),
                    "top1_ours_eq_official": bool(last["ours"].argmax()
                                                  == last["official"].argmax()),
                    "top5_common_ours_official": len(top5["ours"] & top5["official"]),
                    "top1_ours_realcal_eq_official": bool(last["ours_realcal"].argmax()
                                                          == last["official"].argmax()),
                    "top5_common_ours_realcal_official": len(top5["ours_realcal"]
                                                             & top5["official"]),
                    "top1_keras_eq_official": bool(last["keras"].argmax()
                                                   == last["official"].argmax()),
                    "max_abs_dlogit_ours_official": round(float(
                        np.abs(last["ours"] - last["official"]).max()), 2),
                    "official_top1": labels()[int(last["official"].argmax())],
                    "ours_top1": labels()[int(last["ours"].argmax())]}
        out["relu6_vs_official"] = {
            "note": "our int8 export of movinet-a0-relu6-stream with the imported Kinetics-600 "
                    "weights and head, calibrated on 24 rendered built-in clips; the official "
                    "file fed float frames in [0,1], ours uint8; medians, interleaved blocks",
            "export_s": export_s, "file_mb": round(ours.stat().st_size / 2**20, 2),
            "timing": rows, "real_clips_5fps_end_of_stream": agree,
            "top1_agreement": (round(sum(a["top1_ours_eq_official"] for a in agree.values())
                                     / len(agree), 3) if agree else None),
            "top1_agreement_real_calibration": (round(sum(
                a["top1_ours_realcal_eq_official"] for a in agree.values()) / len(agree), 3)
                if agree else None),
            "top1_agreement_keras_import": (round(sum(
                a["top1_keras_eq_official"] for a in agree.values()) / len(agree), 3)
                if agree else None)}
    else:
        out["relu6_vs_official"] = {"skipped": f"{OFFICIAL} absent"}

    print("movinet-a0-stream (hard-swish): float, int8 all, int8 selective ...",
          file=sys.stderr)
    name = "movinet-a0-stream"
    config = {"model": {"name": name, "frames": 8, "size": s, "num_classes": 3},
              "sampling": SamplingConfig(8, 3, s).as_dict(), "classes": CLASSES,
              "train": {"data": str(data)}}
    hs = Run(work / "hs", create_model(name, 3, frames=8, size=s), CLASSES, config)
    paths, export_s = {}, {}
    before = xt.int8_float_ops
    for label, q, keep in (("float", "none", None), ("int8, all ops", "int8", ()),
                           ("int8, hard-swish + pooling float", "int8", None)):
        if keep is not None:
            xt.int8_float_ops = lambda config, keep=keep: keep
        t0 = time.perf_counter()
        try:
            paths[label] = export_run(hs, "tflite", work / f"hs_{len(paths)}.tflite",
                                      quantize=q, progress=False)
        finally:
            xt.int8_float_ops = before
        export_s[label] = round(time.perf_counter() - t0, 1)
    clips = frames[:64].reshape(8, 8, s, s, 3)
    want = hs.predict_logits(clips)
    hs_rows = []
    for threads in (2, 1):
        ms = interleaved({k: TFLiteRun(p, threads=threads).streamer()
                          for k, p in paths.items()}, frames, n)
        for k, v in ms.items():
            row = {"variant": k, "threads": threads, "ms_per_frame": v}
            if threads == 2:
                got = TFLiteRun(paths[k], threads=2).predict_logits(clips)
                row.update(export_s=export_s[k],
                           file_mb=round(paths[k].stat().st_size / 2**20, 2),
                           top1_agreement_vs_keras=float((got.argmax(1)
                                                          == want.argmax(1)).mean()),
                           max_abs_logit_diff_vs_keras=round(float(np.abs(got - want).max()),
                                                             4))
            hs_rows.append(row)
    out["hard_swish_a0_stream"] = {
        "note": "random-init weights, 3-class head (agreement vs Keras on 8 random clips "
                "fed frame by frame); kept float: " + ", ".join(xt.KEEP_FLOAT_HARD_SWISH),
        "rows": hs_rows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=172)
    ap.add_argument("--frames", type=int, default=500, help="frames timed per variant")
    ap.add_argument("--clips", type=int, default=3, help="base clips timed")
    ap.add_argument("--tflite-memory-frames", type=int, default=10000)
    ap.add_argument("--keras-memory-frames", type=int, default=2000,
                    help="fewer than TFLite's: ~25 ms a frame here")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference.json"))
    args = ap.parse_args()

    import tensorflow as tf

    from vidaction.data.builtin import render_dataset
    from vidaction.data.sampling import SamplingConfig
    from vidaction.errors import VidactionError
    from vidaction.export import export_run
    from vidaction.models import create_model
    from vidaction.models.litert import TFLiteRun
    from vidaction.models.run import Run, write_json

    s = args.size
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="vidaction-bench-"))
    data = render_dataset(work / "data", classes=CLASSES, clips_per_class=2, size=96,
                          seconds=1.2, fps=25, seed=1, splits=(0.5, 0.0, 0.5), progress=False)
    config = {"model": {"name": "movinet-a0-stream", "frames": 8, "size": s, "num_classes": 3},
              "sampling": SamplingConfig(8, 3, s).as_dict(), "classes": CLASSES,
              "train": {"data": str(data)}}
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (64, 12, 12, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(small, -(-s // 12), 1), -(-s // 12), 2)[:, :s, :s]
    result: dict = {"size": s, "cpus": os.cpu_count(), "machine": platform.machine(),
                    "vidaction": vidaction.__version__, "tensorflow": tf.__version__,
                    "load_average_at_start": [round(x, 2) for x in load],
                    "note": "random-init weights, 3-class head; medians of single calls, batch 1; "
                            "other jobs shared the 2 cores when the load average exceeds 2"}
    rows = []

    print("building movinet-a0-stream ...", file=sys.stderr)
    t0 = time.perf_counter()
    model = create_model("movinet-a0-stream", 3, frames=8, size=s)
    run = Run(work / "run", model, CLASSES, config)
    keras = run.streamer()
    keras.step(frames[0])
    build_s = time.perf_counter() - t0
    rows.append({"variant": "Keras stream (TF graph)", **per_frame(keras, frames, args.frames),
                 "setup_s": round(build_s, 1)})
    result["keras_step_convolutions_alone"] = conv_floor(keras.model.step_fn, args.frames)

    exports = {}
    for quantize in ("none", "int8"):
        print(f"exporting TFLite {quantize} ...", file=sys.stderr)
        t0 = time.perf_counter()
        path = export_run(run, "tflite", work / f"a0s_{quantize}.tflite", quantize=quantize,
                          progress=False)
        exports[quantize] = (path, round(time.perf_counter() - t0, 1))
    lite = {q: TFLiteRun(p, threads=2) for q, (p, _) in exports.items()}
    for q, name in (("none", "TFLite float"), ("int8", "TFLite int8")):
        streamer = lite[q].streamer()
        rows.append({"variant": name, **per_frame(streamer, frames, args.frames),
                     "invoke_only_ms_median": invoke_only(streamer, args.frames),
                     **({"state_carry": state_carry(streamer, args.frames)} if q == "none"
                        else {}),
                     "threads": 2, "export_s": exports[q][1],
                     "file_mb": round(exports[q][0].stat().st_size / 2**20, 2)})
    # One thread: on a busy machine a second interpreter thread mostly waits for a core.
    one = TFLiteRun(exports["none"][0], threads=1)
    rows.append({"variant": "TFLite float, 1 thread", "threads": 1,
                 **per_frame(one.streamer(), frames, args.frames)})

    # agreement with Keras on whole clips fed frame by frame
    clips = frames[:64].reshape(8, 8, s, s, 3)
    want = run.predict_logits(clips)
    for q in ("none", "int8"):
        got = lite[q].predict_logits(clips)
        result[f"tflite_{q}_vs_keras"] = {
            "max_abs_logit_diff": float(np.abs(got - want).max()),
            "top1_agreement": float((got.argmax(1) == want.argmax(1)).mean()), "clips": 8}

    result["int8_deployment"] = int8_deployment(work, data, frames, args.frames)

    print("memory over long streams ...", file=sys.stderr)
    result["memory_tflite_float"] = memory(lite["none"].streamer(), frames,
                                           args.tflite_memory_frames)
    result["memory_keras_stream"] = memory(keras, frames, args.keras_memory_frames)

    print("movinet-a0 base per clip ...", file=sys.stderr)
    base_cfg = {**config, "model": {**config["model"], "name": "movinet-a0"}}
    t0 = time.perf_counter()
    base = Run(work / "base", create_model("movinet-a0", 3, frames=8, size=s), CLASSES,
               base_cfg)
    clip = clips[:1]
    base.predict_logits(clip)
    forward = tf.function(lambda x: base.model(x, training=False))
    forward(tf.constant(clip)).numpy()
    setup = time.perf_counter() - t0
    times = timed(lambda: forward(tf.constant(clip)).numpy(), args.clips)
    base_rows = [{"variant": "movinet-a0 base, Keras (tf.function)", "clip": [8, s, s],
                  "s_per_clip_median": round(statistics.median(times), 4),
                  "setup_s": round(setup, 1)}]
    try:
        t0 = time.perf_counter()
        path = export_run(base, "tflite", work / "a0_base.tflite", progress=False)
        export_s = round(time.perf_counter() - t0, 1)
        b = TFLiteRun(path, threads=2)
        got = b.predict_logits(clip)
        times = timed(lambda: b.predict_logits(clip), args.clips)
        base_rows.append({"variant": "movinet-a0 base, TFLite float", "clip": [8, s, s],
                          "s_per_clip_median": round(statistics.median(times), 4),
                          "export_s": export_s,
                          "max_abs_logit_diff_vs_keras": float(
                              np.abs(got - base.predict_logits(clip)).max())})
    except VidactionError as e:
        base_rows.append({"variant": "movinet-a0 base, TFLite float", "error": str(e)})

    result["stream_per_frame"] = rows
    result["base_per_clip"] = base_rows
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets_ms_per_frame"] = {"TFLite float": 4.0, "Keras stream": 6.0}
    write_json(Path(args.out), result)

    print(f"\nmovinet-a0-stream, {s}x{s}, one frame per call, CPU ({os.cpu_count()} cores, "
          f"load {load[0]:.1f} at start)")
    print(f"{'variant':28} {'ms/frame':>9} {'frames/s':>9} {'invoke alone':>13}")
    for r in rows:
        alone = f"{r['invoke_only_ms_median']:13.2f}" if "invoke_only_ms_median" in r else ""
        print(f"{r['variant']:28} {r['ms_per_frame_median']:9.2f} {r['frames_per_s']:9.1f}"
              f"{alone}")
    carry = rows[1]["state_carry"]
    print(f"TFLite float state carry ({carry['state_tensors']} tensors): get_tensor + "
          f"set_tensor {carry['get_set_ms_median']:.3f} ms, view to view "
          f"{carry['view_copy_ms_median']:.3f} ms ({carry['ratio']:.2f}x)")
    floor = result["keras_step_convolutions_alone"]
    print(f"the Keras step's {floor['convolutions']} convolutions alone in TF: "
          f"{floor['ms_median']:.2f} ms")
    for r in base_rows:
        print(f"{r['variant']:40} " + (f"{r['s_per_clip_median']:.3f} s/clip" if "error" not in r
                                       else f"failed: {r['error']}"))
    for k in ("memory_tflite_float", "memory_keras_stream"):
        m = result[k]
        print(f"{k}: {m['frames']} frames, RSS {m['rss_mb'][0][1]} -> {m['rss_mb'][-1][1]} MB "
              f"(growth after warm-up {m['growth_mb_after_warmup']} MB)")
    dep = result["int8_deployment"]
    for r in dep["relu6_vs_official"].get("timing", []):
        print(f"int8, {r['threads']} thread(s): official "
              f"{r['official_ms_per_frame']:.2f} ms/frame, ours (movinet-a0-relu6-stream) "
              f"{r['ours_ms_per_frame']:.2f} "
              f"({r['ours_over_official']:.2f}x)")
    if dep["relu6_vs_official"].get("top1_agreement") is not None:
        d = dep["relu6_vs_official"]
        print(f"top-1 agreement with the official file on the real clips: ours "
              f"{d['top1_agreement']:.2f} (calibrated on rendered clips), "
              f"{d['top1_agreement_real_calibration']:.2f} (on the real clips), Keras import "
              f"{d['top1_agreement_keras_import']:.2f}")
    for r in dep["hard_swish_a0_stream"]["rows"]:
        print(f"movinet-a0-stream {r['variant']:34} {r['threads']} thread(s) "
              f"{r['ms_per_frame']:6.2f} ms/frame")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
