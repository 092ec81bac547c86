"""Each model trained from scratch on the built-in dataset (CPU), scored on its test split.

Renders the built-in dataset (all 14 classes, small frames), trains every model of the
reference with `vidaction.train.train`, scores the held-out test split (actors never seen in
training) with 3 evenly spaced clips per video, softmax averaged, and writes accuracy,
training time and accuracy on the direction pairs (sit_down/stand_up, raise_arms/lower_arms,
turn_left/turn_right) to bench/results/models_accuracy.json. "pairs" is top-1 over all
classes on the videos of those six classes; "within pair" asks only which of its two classes
a video is: 0.5 is chance, and a model that ignores frame order cannot beat it, since the two
classes of a pair hold the same frames in opposite order.

No ImageNet weights can be fetched here, so the frame CNNs of cnn-rnn and frame-baseline start
from random weights and train with the rest (a frozen random CNN gives near-zero features).

    python bench/models_accuracy.py [--models r2plus1d,cnn-rnn] [--size 64] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU numbers

import numpy as np  # noqa: E402

import vidaction  # noqa: E402, F401  (tf-keras before TensorFlow)

PAIRS = [("sit_down", "stand_up"), ("raise_arms", "lower_arms"), ("turn_left", "turn_right")]
DATA = dict(clips_per_class=20, seconds=2.4, fps=25, seed=0)
# name -> TrainConfig overrides; every run: pretrained none, seed 0, a clip cache, 8 frames
# 7 apart (56 of the clips' 60 frames: the whole movement), no early stopping.
CLIP = dict(frames=8, frame_step=7, batch_size=8)
RUNS = {
    # lr: its default, 1e-4; near chance for ~20 epochs, then it starts to learn
    "r2plus1d": dict(model="r2plus1d", epochs=80, **CLIP),
    "cnn-rnn": dict(model="cnn-rnn", frame_backbone="mobilenetv2", freeze_backbone=False,
                    epochs=30, **CLIP),
    "frame-baseline": dict(model="frame-baseline", frame_backbone="mobilenetv2",
                           freeze_backbone=False, epochs=30, **CLIP),
    "rgb-diff": dict(model="rgb-diff", epochs=20, **CLIP),
    # The reference's use of cnn-rnn, a frozen pretrained CNN under the GRUs, with the only
    # pretrained CNN there is offline: frame-baseline's, trained on the same training split
    # (run that key first, or earlier into the same --work). Its features are cached once.
    "cnn-rnn-on-fb": dict(model="cnn-rnn", frame_backbone="mobilenetv2",
                          pretrained_from="frame-baseline", epochs=30, **CLIP),
}


def score(run: Path, data: Path, clips: int = 3) -> dict:
    """Video-level top-1 on the test split: softmax of `clips` evenly spaced clips averaged."""
    import tensorflow as tf

    from vidaction import load_run
    from vidaction.data.pipeline import SkipLog, make_dataset
    from vidaction.data.sampling import SamplingConfig
    from vidaction.data.sources import load_dataset

    r = load_run(run)
    ds = load_dataset(data)
    test = ds.split("test")
    assert ds.classes == r.classes
    sampling = SamplingConfig(**r.config["sampling"])
    probs = np.zeros((len(test), len(r.classes)))
    skips = SkipLog()
    for x, _, vid in make_dataset(test, sampling, training=False, batch_size=8,
                                  clips_per_video=clips, with_video_id=True, skips=skips):
        p = tf.nn.softmax(r.model(x, training=False)).numpy()
        np.add.at(probs, vid.numpy(), p)
    truth = np.array([c.label for c in test])
    pred = probs.argmax(1)
    out = {"test_videos": len(test), "skipped": skips.total,
           "accuracy": float((pred == truth).mean())}
    idx = {c: i for i, c in enumerate(r.classes)}
    on_pairs, within = [], []
    for a, b in PAIRS:
        ia, ib = idx[a], idx[b]
        for k in np.flatnonzero((truth == ia) | (truth == ib)):
            on_pairs.append(pred[k] == truth[k])
            within.append((ia if probs[k, ia] >= probs[k, ib] else ib) == truth[k])
    out["pairs_accuracy"] = float(np.mean(on_pairs))
    out["within_pair_accuracy"] = float(np.mean(within))
    return out


def frame_cnn_weights(run: Path, out: Path) -> Path:
    """The trained frame CNN of a cnn-rnn / frame-baseline run as a Keras .h5 weights file,
    what `--pretrained PATH` takes."""
    from vidaction import load_run
    from vidaction.models.frame_cnn import frame_cnn_of

    if not (run / "config.json").is_file():
        raise SystemExit(f"{run}: no run there; train {run.name} first (same --work)")
    frame_cnn_of(load_run(run).model).save_weights(str(out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(RUNS), help="comma-separated keys of RUNS")
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--variation", default="low", choices=["full", "low"],
                    help="built-in nuisance variation (low: plain backgrounds, steady camera)")
    ap.add_argument("--epochs", type=int, help="override every run's epochs")
    ap.add_argument("--work", help="folder for data, runs and caches (default: a temp dir)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                         "models_accuracy.json"))
    args = ap.parse_args()

    from vidaction.data.builtin import render_dataset
    from vidaction.models import model_info
    from vidaction.models.run import write_json
    from vidaction.train import TrainConfig, train

    work = Path(args.work or tempfile.mkdtemp(prefix="vidaction-acc-"))
    t0 = time.perf_counter()
    data = render_dataset(work / f"data{args.size}-{args.variation}", size=args.size,
                          progress=False, workers=min(2, os.cpu_count() or 1),
                          variation=args.variation, **DATA)
    render_s = time.perf_counter() - t0
    results = []
    for key in args.models.split(","):
        cfg = {**RUNS[key], **({"epochs": args.epochs} if args.epochs else {})}
        pretrained = "none"
        if "pretrained_from" in cfg:
            pretrained = str(frame_cnn_weights(work / "runs" / cfg["pretrained_from"],
                                               work / f"{key}-frame_cnn.h5"))
        t0 = time.perf_counter()
        run = train(TrainConfig(data=str(data), out=str(work / "runs" / key), size=args.size,
                                pretrained=pretrained, seed=0,
                                patience=cfg.pop("patience", 100),
                                clip_cache=str(work / "clip-cache"),
                                **{k: v for k, v in cfg.items() if k != "pretrained_from"}),
                    force=True, progress=False)
        train_s = time.perf_counter() - t0
        history = json.loads((run / "history.json").read_text())["epochs"]
        best = max(history, key=lambda e: -e["val_loss"])
        row = {"run": key, **cfg, "lr": cfg.get("lr") or model_info(cfg["model"]).lr,
               "size": args.size, "train_s": round(train_s, 1),
               "epochs_run": len(history), "best_epoch": best["epoch"],
               "val_accuracy": best["val_accuracy"], **score(run, data)}
        print(json.dumps(row), flush=True)
        results.append(row)
    # Rows of models not run this time are kept from the last run on the same data, so one
    # model can be re-run (e.g. longer) without repeating the others.
    data_key = {**DATA, "size": args.size, "variation": args.variation}
    out = Path(args.out)
    if out.exists():
        old = json.loads(out.read_text())
        if old.get("data") == data_key:
            ran = {r["run"] for r in results}
            results = [r for r in old["results"] if r["run"] not in ran] + results
    write_json(out, {
        "machine": platform.machine(), "cpus": os.cpu_count(), "data": data_key,
        "render_s": round(render_s, 1), "chance": 1 / 14, "results": results})
    print("\n| model | frames x step | epochs | train s | test acc | pairs | within pair |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['run']} | {r['frames']} x {r['frame_step']} | {r['epochs_run']} | "
              f"{r['train_s']:.0f} | {r['accuracy']:.2f} | {r['pairs_accuracy']:.2f} | "
              f"{r['within_pair_accuracy']:.2f} |")


if __name__ == "__main__":
    main()
