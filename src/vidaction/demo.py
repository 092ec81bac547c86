"""`vidaction demo`: the whole job on the built-in dataset, from rendering to labelled GIFs.

Render (or reuse) -> check every file -> contact sheet -> train -> evaluate on the held-out
actors -> predict a few test clips and draw the verdict on them. Every stage is the same
code the commands run; the demo only picks small settings so it finishes in minutes on
two CPU cores.

It trains from scratch (no weights can be downloaded here), so its data are the built-in
clips with low nuisance variation (plain backgrounds, steady camera, no distractors) and a
subset of the classes, one direction pair included. The accuracy it prints is the real
test accuracy on unseen actors of that easier set, and is labelled as such.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from vidaction.errors import UserError

DEMO_CLASSES = ["clap", "jumping_jacks", "sit_down", "squats", "stand_up", "wave_one_hand"]
DEMO_DATA = dict(classes=DEMO_CLASSES, clips_per_class=40, size=64, seconds=2.4, fps=25,
                 seed=0, variation="low")
DEMO_TRAIN = dict(model="rgb-diff", frames=8, frame_step=7, size=48, epochs=40, batch_size=16,
                  lr=1e-3, patience=10, augment=True)
PREDICT_CLIPS = 3  # test videos drawn on as GIFs


def run_demo(out: Path, force: bool = False, progress: bool = True,
             data: dict | None = None, train: dict | None = None) -> int:
    """Returns the exit status; `data` / `train` override DEMO_DATA / DEMO_TRAIN (tests use a
    tiny set)."""
    from vidaction.data.builtin import preview_dataset, render_dataset
    from vidaction.data.check import check_dataset, format_report
    from vidaction.data.sampling import SamplingConfig
    from vidaction.evaluate.run import evaluate_run, format_summary
    from vidaction.infer.overlay import overlay_video
    from vidaction.infer.predict import predict_video
    from vidaction.models.predictor import sampling_config

    out = Path(out)
    settings = {**DEMO_DATA, **(data or {})}
    data_dir, run_dir = out / "data", _new_run_dir(out, force)
    t0 = time.perf_counter()
    stamp = {}

    print(f"[1/6] built-in dataset ({len(settings['classes'])} classes, "
          f"{settings['variation']} variation) -> {data_dir}", flush=True)
    try:
        render_dataset(data_dir, progress=progress, force=force,
                       workers=min(2, os.cpu_count() or 1), **settings)
    except ValueError as e:
        raise UserError(str(e)) from None
    stamp["data"] = time.perf_counter() - t0

    print("[2/6] checking every file", flush=True)
    tr = {**DEMO_TRAIN, **(train or {})}  # "shorter than one clip" means the clips trained on
    report = check_dataset(data_dir, progress=progress,
                           sampling=SamplingConfig(n_frames=tr["frames"],
                                                   frame_step=tr["frame_step"],
                                                   size=tr["size"]))
    print(format_report(report))
    sheet = preview_dataset(data_dir, out / "preview.png")

    print(f"[3/6] contact sheet -> {sheet}", flush=True)
    # TensorFlow only now: a refused --out above answers at once, not after 8-10 s
    from vidaction.train import TrainConfig, load_run
    from vidaction.train import train as train_run

    cfg = TrainConfig(data=str(data_dir), out=str(run_dir), pretrained="none",
                      clip_cache=str(out / "clip-cache"), **{**DEMO_TRAIN, **(train or {})})
    print(f"[4/6] training {cfg.model} from scratch ({cfg.frames}x{cfg.size}x{cfg.size} "
          f"clips, up to {cfg.epochs} epochs) -> {run_dir}", flush=True)
    t = time.perf_counter()
    train_run(cfg, force=force, progress=progress)
    stamp["train"] = time.perf_counter() - t

    # predictions before the evaluation, so that report.html shows their GIFs
    print("[5/6] predicting a few test clips, the label and the truth drawn on each",
          flush=True)
    pred_dir = run_dir / "predictions"
    run = load_run(run_dir)
    sampling = sampling_config(run)
    gifs, gallery = [], []
    for clip in report.dataset.split("test")[::max(1, len(report.dataset.split("test"))
                                                  // PREDICT_CLIPS)][:PREDICT_CLIPS]:
        pred = predict_video(run, clip.path, sampling)
        top = pred.top(run.classes, 2)
        gif = pred_dir / f"{clip.path.stem}.gif"
        gif.parent.mkdir(parents=True, exist_ok=True)
        truth = report.dataset.classes[clip.label]
        right = top[0][0] == truth
        mark = "right" if right else "wrong"
        overlay_video(clip.path, gif, lambda i, top=top: top,
                      caption=(f"true: {truth} - {mark}", right))
        print(f"      {clip.path.name}: {top[0][0]} ({top[0][1]:.1%}), truly {truth} "
              f"[{mark}] -> {gif}")
        gifs.append(gif)
        gallery.append({"path": gif, "video": clip.path, "true": truth,
                        "predicted": top[0][0], "prob": top[0][1]})

    print("[6/6] evaluating on the test split (actors never seen in training)", flush=True)
    t = time.perf_counter()
    metrics = evaluate_run(run_dir, split="test", force=True, progress=progress,
                           gallery=gallery)
    print(format_summary(metrics))
    stamp["evaluate"] = time.perf_counter() - t

    total = time.perf_counter() - t0
    acc = metrics["top1_accuracy"]
    eval_dir = run_dir / "eval" / "test"
    print(f"\ndemo done in {total:.0f} s (data {stamp['data']:.0f} s, training "
          f"{stamp['train']:.0f} s, evaluation {stamp['evaluate']:.0f} s). Outputs in {out}/:")
    print(f"  {'data/':<24}{len(report.dataset.clips)} videos, "
          f"{len(report.dataset.classes)} classes")
    print(f"  {'preview.png':<24}a few frames of a few clips per class")
    rel = run_dir.relative_to(out)
    print(f"  {str(rel) + '/':<24}the trained model, history.json, log.csv, TensorBoard")
    print(f"  {str(eval_dir.relative_to(out)) + '/':<24}metrics.json, predictions.csv, "
          "confusion_matrix.png, curves.png, report.html")
    print(f"  {str(pred_dir.relative_to(out)) + '/':<24}{len(gifs)} GIFs: the predicted "
          "label, the true one, right or wrong (also in report.html)")
    print(f"test accuracy {acc:.1%} on unseen actors of the {settings['variation']}-variation "
          f"built-in set (chance {1 / len(report.dataset.classes):.1%})")
    print("\nnext steps:")
    print(f"  open {eval_dir / 'report.html'}   the evaluation, with the prediction GIFs")
    print(f"  vidaction predict {run_dir} YOUR_VIDEO.mp4   label your own video "
          "(--overlay out.mp4 draws it)")
    print("  vidaction train --data YOUR_DATA --out my-run   train on your own class "
          "folders (check them first: vidaction data check YOUR_DATA)")
    sys.stdout.flush()
    return 1 if report.bad else 0


def _new_run_dir(out: Path, force: bool) -> Path:
    """run/, or run-2/, run-3/ ... when earlier demo runs are there: a second `make demo`
    keeps the first one's results. --force reuses run/."""
    if force or not (out / "run").exists():
        return out / "run"
    n = 2
    while (out / f"run-{n}").exists():
        n += 1
    return out / f"run-{n}"


# `vidaction demo --pose`: the skeleton model beside the plain demo (issue 18). It needs the
# MoveNet weights (fetched and cached on first use, or --pose-weights), so the plain demo
# never runs it. The figures are rendered larger and with the "pose" variation (arms held
# forward, pauses, ...), at 10 frames/s, the skeleton models' rate.
POSE_DATA = dict(classes=DEMO_CLASSES, clips_per_class=20, size=256, seconds=3.0, fps=10,
                 seed=0, variation="pose")
POSE_TRAIN = dict(model="pose-stats", epochs=80, batch_size=16, patience=15)


def run_pose_demo(out: Path, force: bool = False, progress: bool = True,
                  weights: str | None = None, data: dict | None = None,
                  train: dict | None = None) -> int:
    """Render -> keypoints (MoveNet, cached) -> train pose-stats -> evaluate on unseen
    actors -> a skeleton overlay GIF of a test clip with the verdict printed."""
    from vidaction.data.builtin import render_dataset
    from vidaction.data.sources import load_dataset
    from vidaction.evaluate.run import evaluate_run, format_summary
    from vidaction.infer.pose import overlay_pose
    from vidaction.infer.predict import predict_video
    from vidaction.models.pose_run import pose_settings, video_keypoints
    from vidaction.train import TrainConfig, load_run
    from vidaction.train import train as train_run

    out = Path(out)
    settings = {**POSE_DATA, **(data or {})}
    data_dir = out / "pose-data"
    run_dir = out / "pose-run"  # pose-run-2, -3 ... beside earlier ones; --force reuses it
    n = 2
    while not force and (run_dir / "config.json").exists():
        run_dir, n = out / f"pose-run-{n}", n + 1
    t0 = time.perf_counter()
    print(f"[pose 1/4] built-in dataset for the skeleton model ({len(settings['classes'])} "
          f"classes, {settings['size']} px, {settings['variation']} variation) -> {data_dir}",
          flush=True)
    try:
        render_dataset(data_dir, progress=progress, force=force,
                       workers=min(2, os.cpu_count() or 1), **settings)
    except ValueError as e:
        raise UserError(str(e)) from None
    cfg = TrainConfig(data=str(data_dir), out=str(run_dir), pretrained="none",
                      pose_weights=weights, **{**POSE_TRAIN, **(train or {})})
    print(f"[pose 2/4] MoveNet keypoints of every clip (cached), then training {cfg.model} "
          f"-> {run_dir}", flush=True)
    t = time.perf_counter()
    train_run(cfg, force=force, progress=progress)
    train_s = time.perf_counter() - t
    print("[pose 3/4] evaluating on the test split (actors never seen in training)",
          flush=True)
    metrics = evaluate_run(run_dir, split="test", force=True, progress=progress)
    print(format_summary(metrics))
    print("[pose 4/4] a test clip with its skeleton drawn", flush=True)
    run = load_run(run_dir)
    test = load_dataset(data_dir).split("test")
    clip = test[len(test) // 2]
    pred = predict_video(run, clip.path, None)
    label, prob = pred.top(run.classes, 1)[0]
    gif = run_dir / "predictions" / f"{clip.path.stem}.skeleton.gif"
    gif.parent.mkdir(parents=True, exist_ok=True)
    overlay_pose(clip.path, gif, video_keypoints(clip.path, pose_settings(run.config)))
    truth = run.classes[clip.label] if clip.label < len(run.classes) else "?"
    print(f"      {clip.path.name}: {label} ({prob:.0%}), truly {truth} "
          f"[{'right' if label == truth else 'wrong'}] -> {gif}")
    print(f"pose demo done in {time.perf_counter() - t0:.0f} s (training {train_s:.0f} s, "
          f"keypoints included): test accuracy {metrics['top1_accuracy']:.1%} on unseen "
          f"actors; try it on a real video: vidaction predict {run_dir} VIDEO --timeline")
    sys.stdout.flush()
    return 0
