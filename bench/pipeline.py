"""Clip pipeline throughput: the reference's generator vs ours, raw decode, cached epoch.

For 8x224x224 clips, frame_step 15, from 320x240 videos (MPEG-4 part 2 AVI like UCF101's
xvid files, and H.264 MP4), batch 8, random start per clip as in training:
  (a) naive: the reference's code: one Python generator, OpenCV reading frame by frame,
      a TensorFlow resize_with_pad per frame, one thread;
  (b) ours: vidaction.data.make_dataset (PyAV seeking + parallel map), first epoch;
  (c) raw decode: PyAV decoding only the frames the clip needs (from the keyframe before
      each sampled frame), no colour conversion, no resize - the floor for any reader;
      measured with one worker and with as many workers as (b) uses;
  (d) ours, second epoch with the clip cache on.
Prints a table and writes bench/results/pipeline.json.

    python bench/pipeline.py [--clips 64] [--videos 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from vidaction.data.pipeline import make_dataset  # noqa: E402
from vidaction.data.sampling import SamplingConfig, clip_indices, train_start  # noqa: E402
from vidaction.io import probe, write_video  # noqa: E402
from vidaction.io.writer import atomic_path  # noqa: E402

CFG = SamplingConfig(n_frames=8, frame_step=15, size=224)
BATCH = 8
# (extension, keyframe interval). MPEG-4 part 2 at FFmpeg's default of 12; H.264 at 50
# (2 s, as phones and web video use) and at x264's default 250, the worst case for a
# 7 s clip: one keyframe, so every clip decodes from the first frame.
FORMATS = {"avi-mpeg4": (".avi", None), "mp4-h264": (".mp4", 50),
           "mp4-h264-gop250": (".mp4", None)}
# A real UCF101 clip (XviD with packed B-frames, read through an index built by decoding),
# copied to --videos files so that each one is indexed as a new file would be.
REAL_UCF101 = Path(os.environ.get("VIDACTION_TEST_MEDIA") or
                   Path(__file__).resolve().parents[2] / "shared" / "media" / "real"
                   ) / "v_ApplyEyeMakeup_g01_c01.avi"


def make_videos(folder: Path, n: int, ext: str, gop: int | None, seconds: float = 7.0,
                fps: int = 25) -> list[Path]:
    """Moving textured scenes, 320x240: enough detail that decoding costs what it does on
    real footage (flat synthetic frames decode unrealistically fast)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = folder / f"clip{i:03d}{ext}"
        out.append(p)
        if p.exists():
            continue
        tex = rng.integers(0, 256, (240, 640, 3), dtype=np.uint8)
        tex = (tex.astype(np.float32) * 0.5 + 64).astype(np.uint8)
        frames = []
        for t in range(int(seconds * fps)):
            f = np.ascontiguousarray(tex[:, (t * 3 + i) % 320:(t * 3 + i) % 320 + 320])
            x = int(40 + 200 * (0.5 + 0.5 * np.sin(t / 9 + i)))
            f[60:180, x:x + 50] = (200, 80, 40)
            frames.append(f)
        write_video(p, frames, fps=fps, gop=gop)
    return out


def _keyframe_interval(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = [k for k, p in enumerate(q for q in c.demux(s) if q.size) if p.is_keyframe]
    return keys[1] - keys[0] if len(keys) > 1 else int(probe(path).frame_count)


def copy_real_clip(folder: Path, n: int, ext: str) -> list[Path]:
    """The real clip as it is (.avi), or its frames encoded by x264 with its defaults (.mp4,
    a keyframe every 50): real footage, where x264 makes most frames B-frames (69% here),
    unlike the synthetic scenes above (about 2%)."""
    first = folder / f"v_ApplyEyeMakeup_g01_c01{ext}"
    if not first.exists():
        if ext == ".avi":
            shutil.copyfile(REAL_UCF101, first)
        else:
            from vidaction.io import read_frames

            write_video(first, read_frames(REAL_UCF101), fps=25, gop=50)
    out = [first]
    for i in range(1, n):
        p = folder / f"v_ApplyEyeMakeup_g01_c{i + 1:02d}{ext}"
        if not p.exists():
            shutil.copyfile(first, p)
        out.append(p)
    return out


def index_cost_ms(path: Path, repeat: int = 5) -> dict:
    """Opening a file and indexing it: from packets only, and by one sequential decode (what
    a file in "decoded" mode costs once; afterwards the index is read from disk)."""
    import vidaction.io.video as video

    def once(distrust: bool) -> float:
        video._INDEX_CACHE._d.clear()
        saved = video._DISK_INDEX.get, video._PyAVReader._distrust
        video._DISK_INDEX.get = lambda key: None
        if not distrust:
            video._PyAVReader._distrust = lambda self, *a: ""
        elif path.suffix != ".avi":
            video._PyAVReader._distrust = lambda self, *a: "forced"
        try:
            t = time.perf_counter()
            probe(path)
            return 1000 * (time.perf_counter() - t)
        finally:
            video._DISK_INDEX.get, video._PyAVReader._distrust = saved

    packets = sorted(once(False) for _ in range(repeat))[repeat // 2]
    decoded = sorted(once(True) for _ in range(repeat))[repeat // 2]
    return {"packets_ms": packets, "decoded_ms": decoded}


def decoded_per_clip(paths: list[Path], clips: int) -> float:
    """Frames the decoder produced per training clip, on average: unlike a rate, a count
    that a busy machine cannot blur (skipped frames are never produced)."""
    from vidaction.io import VideoReader

    total = 0
    for i in range(clips):
        p = paths[i % len(paths)]
        with VideoReader(p, threads=1) as r:
            start = train_start(r.frame_count, CFG, np.random.default_rng(i))
            idx, mask = clip_indices(start, r.frame_count, CFG)
            r.read(idx[mask])
            total += r.frames_decoded
    return total / clips


def b_frame_share(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        types = [str(f.pict_type) for f in c.decode(video=0)]
    return sum(t.endswith("B") or t == "3" for t in types) / max(len(types), 1)


@contextmanager
def reader_at(rev: str | None):
    """The pipeline with the frame reader as it was at git revision `rev` (None: as it is),
    so that a change to the reader is measured against the code before it in one run."""
    if rev is None:
        yield
        return
    import importlib.util
    import subprocess

    import vidaction.data.pipeline as pipeline
    import vidaction.data.sampling as sampling

    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/vidaction/io/video.py"],
                         check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "video_before.py"
        f.write_text(src)
        spec = importlib.util.spec_from_file_location("vidaction_video_before", f)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
    saved = sampling.VideoReader, pipeline.VideoReader
    sampling.VideoReader = pipeline.VideoReader = mod.VideoReader
    try:
        yield
    finally:
        sampling.VideoReader, pipeline.VideoReader = saved


@contextmanager
def no_skipping():
    """Our reader as it was before it skipped unreferenced frames: the slower way, same run."""
    import vidaction.io.video as video

    old, video._SKIP_NONREF_CODECS = video._SKIP_NONREF_CODECS, ()
    try:
        yield
    finally:
        video._SKIP_NONREF_CODECS = old


def naive_rate(paths: list[Path], clips: int) -> float:
    """The reference's FrameGenerator + frames_from_video_file, as published."""
    import cv2
    import tensorflow as tf

    def format_frames(frame, output_size):
        frame = tf.image.convert_image_dtype(frame, tf.float32)
        return tf.image.resize_with_pad(frame, *output_size)

    def frames_from_video_file(video_path, n_frames, output_size=(224, 224), frame_step=15):
        result = []
        src = cv2.VideoCapture(str(video_path))
        video_length = src.get(cv2.CAP_PROP_FRAME_COUNT)
        need_length = 1 + (n_frames - 1) * frame_step
        if need_length > video_length:
            start = 0
        else:
            start = np.random.randint(0, video_length - need_length + 1)
        src.set(cv2.CAP_PROP_POS_FRAMES, start)
        ret, frame = src.read()
        result.append(format_frames(frame, output_size))
        for _ in range(n_frames - 1):
            for _ in range(frame_step):
                ret, frame = src.read()
            if ret:
                result.append(format_frames(frame, output_size))
            else:
                result.append(np.zeros_like(result[0]))
        src.release()
        return np.array(result)[..., [2, 1, 0]]

    def gen(n):
        for i in range(n):
            yield frames_from_video_file(paths[i % len(paths)], CFG.n_frames), 0

    sig = (tf.TensorSpec((None, None, None, 3), tf.float32), tf.TensorSpec((), tf.int32))
    for n in (BATCH, clips):  # the first pass only warms TensorFlow up
        ds = tf.data.Dataset.from_generator(lambda n=n: gen(n), output_signature=sig)
        ds = ds.batch(BATCH)
        t = time.perf_counter()
        got = sum(int(y.shape[0]) for _, y in ds)
    return got / (time.perf_counter() - t)


def _epoch_rate(ds) -> float:
    t = time.perf_counter()
    n = sum(int(y.shape[0]) for _, y in ds)
    return n / (time.perf_counter() - t)


def ours_rates(paths: list[Path], clips: int, cache_dir: Path | None = None) -> tuple:
    """(first epoch, second epoch): the first also traces the graph and indexes each file."""
    from vidaction.io.video import _INDEX_CACHE

    _INDEX_CACHE._d.clear()  # each measurement indexes its files afresh
    items = [(paths[i % len(paths)], 0) for i in range(clips)]
    ds = make_dataset(items, CFG, training=True, batch_size=BATCH, seed=0, cache_dir=cache_dir)
    return _epoch_rate(ds), _epoch_rate(ds)


def raw_decode_rate(paths: list[Path], clips: int, workers: int, skip: bool = False) -> float:
    """Decode, without conversion, exactly the frames a clip needs: every frame from the
    keyframe before each sampled one, or with `skip` only those a sampled frame depends on
    (FFmpeg's skip_frame=NONREF on packets of frames nobody wants)."""
    import av

    counts = {p: probe(p).frame_count for p in paths}

    def one(i: int) -> int:
        p = paths[i % len(paths)]
        start = train_start(counts[p], CFG, np.random.default_rng(i))
        idx, mask = clip_indices(start, counts[p], CFG)
        wanted = set(idx[mask].tolist())
        last = max(wanted)
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            s.codec_context.thread_count = 1
            pts = sorted(pk.pts for pk in c.demux(s) if pk.size and pk.pts is not None)
            keys = []
            c.seek(0, stream=s)
            for pk in c.demux(s):
                if pk.is_keyframe and pk.pts is not None:
                    keys.append(pts.index(pk.pts))
            keys.sort()
            done = -1
            pos = {v: j for j, v in enumerate(pts)}
            for w in sorted(wanted):
                k = max(x for x in keys if x <= w)
                if k > done:
                    c.seek(pts[k], stream=s, backward=True)
                    s.codec_context.flush_buffers()
                got = False
                for pk in c.demux(s):
                    if skip:
                        need = pk.pts is None or pos.get(pk.pts) in wanted
                        s.codec_context.skip_frame = "DEFAULT" if need else "NONREF"
                    for fr in pk.decode():
                        j = pts.index(fr.pts)
                        done = j
                        if j >= w:
                            got = True
                            break
                    if got:
                        break
                if done >= last:
                    break
        return 1

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        n = sum(pool.map(one, range(clips)))
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=96, help="clips per measurement")
    ap.add_argument("--videos", type=int, default=16, help="distinct videos per format")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each rate this many times and keep the best (less noise)")
    ap.add_argument("--work", type=Path, default=None, help="where to keep generated videos")
    ap.add_argument("--before", metavar="REV", default=None,
                    help="also measure (b) with the frame reader of this git revision, in the "
                         "same run, on the synthetic rows")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline.json")
    args = ap.parse_args(argv)

    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    work = args.work or Path(tempfile.mkdtemp(prefix="vidaction-bench-"))
    results = {"config": {"n_frames": CFG.n_frames, "frame_step": CFG.frame_step,
                          "repeat": args.repeat, "statistic": "best of repeat",
                          "size": CFG.size, "batch": BATCH, "clips": args.clips,
                          "source": "320x240, 25 fps, 7 s", "cores": cores,
                          "tensorflow": tf.__version__, "python": platform.python_version()},
               "formats": {}}
    rows = []
    formats = dict(FORMATS)
    if REAL_UCF101.is_file():
        formats["avi-ucf101-real"] = (".avi", "real")
        formats["mp4-h264-ucf101"] = (".mp4", "real")
    else:
        print(f"skipping the real UCF101 row: {REAL_UCF101} is absent")
    for name, (ext, gop) in formats.items():
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        real = gop == "real"
        paths = (copy_real_clip(folder, args.videos, ext) if real
                 else make_videos(folder, args.videos, ext, gop))
        h264 = probe(paths[0]).codec == "h264"
        with tempfile.TemporaryDirectory() as cache:
            def best(fn, *a, **kw):
                return max(fn(*a, **kw) for _ in range(args.repeat))

            bs = [ours_rates(paths, args.clips) for _ in range(args.repeat)]
            r = {
                "a_naive_clips_per_s": best(naive_rate, paths, args.clips),
                "b_ours_first_epoch_clips_per_s": max(b[0] for b in bs),
                "b_ours_clips_per_s": max(b[1] for b in bs),
                "c_raw_decode_1_worker_clips_per_s": best(raw_decode_rate, paths, args.clips, 1),
                "c_raw_decode_clips_per_s": best(raw_decode_rate, paths, args.clips, cores),
                "d_ours_cached_epoch2_clips_per_s": max(
                    ours_rates(paths, args.clips, Path(cache) / str(i))[1]
                    for i in range(args.repeat)),
            }
            if args.before and not real:
                with reader_at(args.before):
                    r["b_before_clips_per_s"] = max(
                        ours_rates(paths, args.clips)[1] for _ in range(args.repeat))
                r["before"] = args.before
            if h264:  # what skipping unreferenced frames buys, against the same reader without
                with no_skipping():
                    r["b_ours_no_skip_clips_per_s"] = max(
                        ours_rates(paths, args.clips)[1] for _ in range(args.repeat))
                r["c_raw_decode_skip_clips_per_s"] = best(raw_decode_rate, paths, args.clips,
                                                          cores, skip=True)
                r["frames_decoded_per_clip"] = decoded_per_clip(paths, args.clips)
                with no_skipping():
                    r["frames_decoded_per_clip_no_skip"] = decoded_per_clip(paths, args.clips)
        a, b, c, d = (r["a_naive_clips_per_s"], r["b_ours_clips_per_s"],
                      r["c_raw_decode_clips_per_s"], r["d_ours_cached_epoch2_clips_per_s"])
        r["read_mode"] = probe(paths[0]).read_mode
        r["b_frame_share"] = b_frame_share(paths[0])
        r["keyframe_interval"] = _keyframe_interval(paths[0])
        r.update({"b_over_a": b / a, "b_over_c": b / c, "d_over_a": d / a,
                  "targets_met": {"b>=4a": b >= 4 * a, "b>=0.7c": b >= 0.7 * c,
                                  "d>=30a": d >= 30 * a}})
        if "b_before_clips_per_s" in r:
            r["before_over_a"] = r["b_before_clips_per_s"] / a
            r["b_over_before"] = b / r["b_before_clips_per_s"]
        if h264:
            r["skip_speedup"] = b / r["b_ours_no_skip_clips_per_s"]
            r["no_skip_over_a"] = r["b_ours_no_skip_clips_per_s"] / a
        if real:
            r["index_cost"] = index_cost_ms(paths[0])
            how = "as it is" if ext == ".avi" else "re-encoded by x264 (defaults, gop 50)"
            r["source"] = f"{REAL_UCF101.name} (shared), {how}, copied to {len(paths)} files"
        results["formats"][name] = r
        rows.append((name, a, r["b_ours_first_epoch_clips_per_s"], b,
                     r["c_raw_decode_1_worker_clips_per_s"], c, d))

    print(f"\nclips/s, {CFG.n_frames}x{CFG.size}x{CFG.size}, step {CFG.frame_step}, "
          f"batch {BATCH}, {cores} cores")
    print("(b) is the second epoch; 'b ep1' includes graph tracing and indexing each file")
    print(f"{'format':<15} {'(a) naive':>10} {'b ep1':>7} {'(b) ours':>9} {'(c) 1 wkr':>10} "
          f"{'(c) ' + str(cores) + ' wkr':>10} {'(d) cached':>11}  b/a   b/c   d/a")
    for name, a, b1, b, c1, c, d in rows:
        print(f"{name:<15} {a:>10.1f} {b1:>7.1f} {b:>9.1f} {c1:>10.1f} {c:>10.1f} {d:>11.1f} "
              f"{b / a:>5.1f} {b / c:>5.2f} {d / a:>5.0f}")
    print("\nmarkdown:\n| format (keyframe every) | (a) reference | (b) ours | (c) raw decode, "
          f"{cores} workers | (d) ours, cached epoch | b/a | b/c | d/a |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, a, _, b, _, c, d), r in zip(rows, results["formats"].values(), strict=True):
        print(f"| {name} ({r['keyframe_interval']}) | {a:.1f} | {b:.1f} | {c:.1f} | {d:.0f} | "
              f"{b / a:.1f}x | {b / c:.2f} | {d / a:.0f}x |")
    for name, r in results["formats"].items():  # what each row measured besides the rates
        if "skip_speedup" in r:
            print(f"{name}: without skipping unreferenced frames "
                  f"{r['b_ours_no_skip_clips_per_s']:.1f} clips/s "
                  f"({r['no_skip_over_a']:.1f}x the reference), with "
                  f"{r['b_ours_clips_per_s']:.1f} ({r['b_over_a']:.1f}x): "
                  f"{r['skip_speedup']:.2f}x; raw decode with skipping "
                  f"{r['c_raw_decode_skip_clips_per_s']:.1f}; frames decoded per clip "
                  f"{r['frames_decoded_per_clip']:.1f}, without skipping "
                  f"{r['frames_decoded_per_clip_no_skip']:.1f}")
        if "index_cost" in r:
            ic = r["index_cost"]
            print(f"{name}: indexing one file from its packets {ic['packets_ms']:.1f} ms, by "
                  f"decoding it {ic['decoded_ms']:.1f} ms (once per file, then from disk)")
        if "b_before_clips_per_s" in r:
            print(f"{name}: reader at {r['before']}: {r['b_before_clips_per_s']:.1f} clips/s "
                  f"({r['before_over_a']:.1f}x the reference); now {r['b_ours_clips_per_s']:.1f}"
                  f" ({r['b_over_a']:.1f}x): ratio {r['b_over_before']:.2f}")
    if args.out.is_file():  # the previous run's ratios, for rows both runs have
        old = json.loads(args.out.read_text()).get("formats", {})
        for name, r in results["formats"].items():
            if name in old:
                was = old[name]["b_over_a"]
                print(f"{name}: b/a {r['b_over_a']:.2f} (previous run {was:.2f}, "
                      f"{100 * (r['b_over_a'] / was - 1):+.0f}%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
