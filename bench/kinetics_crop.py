"""Centre crop or letterbox for `kinetics600`: which fits the official MoViNet better?

Runs the official int8 MoViNet-A0-Stream (Kinetics-600) on the shared real clips whose
Kinetics-600 class is known, through vidaction's own decoding, at its training rate (5 fps),
with both resize modes, two ways: as `vidaction predict` scores a video (3 clips of 50
frames, softmax averaged) and as `vidaction stream` sees it (every frame at 5 fps from a zero
state, the label after the last one). Per clip: the true class's probability and rank.
Writes bench/results/kinetics_crop.json.

Clips: `flipping_a_pancake.mkv` ("flipping pancake") and `jumping_jacks.mp4` ("jumping
jacks") carry their Kinetics-600 class in ../shared/media/real/README.md. The two short
exercise clips name their action only in the file name; their Kinetics classes are our
mapping ("deadlifting"; double-unders are a "skipping rope" move) and are reported apart.

    python bench/kinetics_crop.py [--weights PATH] [--media DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import vidaction  # noqa: E402, F401  (tf-keras before TensorFlow)

ROOT = Path(__file__).resolve().parents[1]
README_LABELS = {"flipping_a_pancake.mkv": "flipping pancake",
                 "jumping_jacks.mp4": "jumping jacks"}
NAME_LABELS = {"deadlift_64.mp4": "deadlifting", "double-unders_73.mp4": "skipping rope"}
MODES = ("crop", "letterbox")


def _score(probs: np.ndarray, classes: list[str], label: str) -> dict:
    order = np.argsort(-probs, kind="stable")
    k = classes.index(label)
    return {"p_true": round(float(probs[k]), 4), "rank": int(np.flatnonzero(order == k)[0]) + 1,
            "top1": classes[order[0]], "top1_p": round(float(probs[order[0]]), 4)}


def _stream_probs(classifier, path: Path, cfg) -> np.ndarray:
    from vidaction.data.sampling import fit_frame, frame_step_for
    from vidaction.io import VideoReader
    from vidaction.models.scoring import softmax

    with VideoReader(path) as r:
        step = frame_step_for(r.info.fps, cfg.fps) or cfg.frame_step
        s = classifier.streamer()
        for i, frame in enumerate(r.iter_frames()):
            if i % step == 0:
                logits = s.step(fit_frame(frame, cfg.size, cfg.resize))
    return softmax(logits[None])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(ROOT.parent / "shared" / "models"
                                             / "movinet_a0_stream_kinetics600_int8.tflite"))
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "real"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "kinetics_crop.json"))
    args = ap.parse_args()

    from vidaction.infer.predict import predict_video
    from vidaction.models.predictor import load_predictor, sampling_config

    clf = load_predictor("kinetics600", weights=args.weights)
    base = sampling_config(clf)
    rows = []
    t0 = time.perf_counter()
    for name, label in {**README_LABELS, **NAME_LABELS}.items():
        path = Path(args.media) / name
        for mode in MODES:
            cfg = replace(base, resize=mode)
            pred = predict_video(clf, path, cfg, clips=3)
            row = {"clip": name, "label": label, "label_from": "README" if name in
                   README_LABELS else "file name (our mapping)", "resize": mode,
                   "predict": _score(pred.probs, clf.classes, label),
                   "stream": _score(_stream_probs(clf, path, cfg), clf.classes, label)}
            rows.append(row)
            print(f"{name:24s} {mode:9s} predict p={row['predict']['p_true']:.3f} "
                  f"rank {row['predict']['rank']:>3}  stream p={row['stream']['p_true']:.3f} "
                  f"rank {row['stream']['rank']:>3}  (top-1 {row['predict']['top1']})")

    def summary(names) -> dict:
        out = {}
        for mode in MODES:
            sel = [r for r in rows if r["resize"] == mode and r["clip"] in names]
            out[mode] = {way: {
                "mean_p_true": round(float(np.mean([r[way]["p_true"] for r in sel])), 4),
                "mean_log_p_true": round(float(np.mean([np.log(max(r[way]["p_true"], 1e-6))
                                                        for r in sel])), 3),
                "top1": sum(r[way]["rank"] == 1 for r in sel),
                "top5": sum(r[way]["rank"] <= 5 for r in sel), "clips": len(sel)}
                for way in ("predict", "stream")}
        return out

    result = {
        "what": "official MoViNet-A0-Stream K600 int8 TFLite via vidaction decoding, 5 fps, "
                "172 px; centre crop vs letterbox",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs shared with other jobs "
                   "(only accuracy is measured here)",
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "summary_readme_labels": summary(README_LABELS),
        "summary_all": summary({**README_LABELS, **NAME_LABELS}),
    }
    best = max(MODES, key=lambda m: result["summary_readme_labels"][m]["predict"]
               ["mean_log_p_true"])
    result["better_on_readme_labels"] = best
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("summary_readme_labels", "summary_all",
                                             "better_on_readme_labels")}, indent=1))


if __name__ == "__main__":
    main()
