"""`vidaction evaluate RUN`: score a held-out split, write numbers, pictures and a report.

RUN/eval/<split>/ receives metrics.json, predictions.csv, confusion_matrix.png,
curves.png and report.html, as one set: they are written into a temporary folder beside it
and renamed into place at the end, so a failed or interrupted evaluation leaves nothing that
blocks the next one. An existing evaluation is replaced only with --force: the files are
derived data, but `--clips 1` after `--clips 3` (or another --data) would otherwise
silently swap the numbers someone has already quoted. Other files in the folder are never
touched.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from vidaction.errors import UserError
from vidaction.evaluate.metrics import chance, model_title, shows_top_k
from vidaction.models.run import RunError, check_run_folder, read_json, run_data, write_json

OUTPUTS = ("metrics.json", "predictions.csv", "confusion_matrix.png", "curves.png",
           "report.html")
SEEN_SPLITS = ("train", "val")  # a run learns from train and picks its epoch on val
EVAL_SPLITS = ("train", "val", "test")
AVERAGING = "mean of the clips' softmax probabilities"
GIF_VIDEOS = 6


def _check_run(run: Path) -> dict:
    check_run_folder(run)  # what a wrong folder is instead (one holding the run: where)
    config = read_json(run / "config.json")
    if not (run / "model").is_dir():
        raise RunError(f"{run}: no saved model (training did not finish; try --resume)")
    if not (run / "classes.txt").is_file():
        raise RunError(f"{run / 'classes.txt'}: missing")
    return config


def _check_out(out: Path, force: bool) -> None:
    from vidaction.io.writer import clean_stale

    clean_stale(out)  # what an evaluation killed while publishing left beside `out`
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    names = {p.name for p in out.iterdir()}
    if not names or force:
        return
    if "report.html" not in names and names <= set(OUTPUTS):
        # an older version's interrupted evaluation: it was never whole
        warnings.warn(f"{out}: replacing an incomplete evaluation (no report.html)",
                      stacklevel=2)
        return
    if "metrics.json" in names:
        raise UserError(f"{out} already holds an evaluation; --force replaces it")
    raise UserError(f"{out} is not empty; choose another --out, or --force to write "
                    "the evaluation files into it")


def _publish(tmp: Path, out: Path) -> None:
    """The finished set onto `out`: one rename when `out` holds nothing but evaluation
    files; else (--force into a folder with other files) file by file, metrics.json last,
    the other files left as they are."""
    from vidaction.io.writer import replace_tree

    if not out.is_dir() or {p.name for p in out.iterdir()} <= set(OUTPUTS):
        replace_tree(tmp, out)
        return
    for name in OUTPUTS:
        if not (tmp / name).exists() and (out / name).exists():
            (out / name).unlink()  # a stale picture from another run would mislead
    for name in sorted(os.listdir(tmp), key=lambda n: n == "metrics.json"):
        os.replace(tmp / name, out / name)


def _same_folder(a: str | os.PathLike, b: str | os.PathLike | None) -> bool:
    try:
        return b is not None and os.path.samefile(a, b)
    except OSError:
        return False


def eval_clips(config: dict, data: str | os.PathLike, split: str,
               run: str | os.PathLike | None = None) -> tuple[list, object]:
    """The videos of `split`, loaded the way the run loaded its data (same fractions and
    seed, so a ROOT/<class>/ layout gives the same test split); (clips, dataset). With the
    run's split record (RUN/split.json), a video the run trained on, or one of an actor it
    trained on, is never in its test split, however the dataset has grown."""
    from vidaction.data.sources import load_dataset
    from vidaction.data.split_record import keep_run_split
    from vidaction.progress import write

    tc = config.get("train", {})
    ds = load_dataset(data, tc.get("val_fraction", 0.2), tc.get("test_fraction", 0.2),
                      tc.get("seed", 0), write_classes_file=False)
    if run is not None:
        ds = keep_run_split(ds, run, lambda note: write(f"vidaction: {note}"))
    if split in SEEN_SPLITS:
        # what training used: a missing val split is carved from train there
        from vidaction.train.fit import TrainConfig, _splits

        known = {f.name for f in dataclasses.fields(TrainConfig)}
        train, val, _ = _splits(ds, TrainConfig(**{k: v for k, v in tc.items() if k in known}))
        return (train if split == "train" else val), ds
    return ds.split(split), ds


def _label_map(run_classes: list[str], ds_classes: list[str], root) -> dict[int, int]:
    """Dataset class id -> run class id, by name (any case); unknown classes refused."""
    lower = {c.lower(): i for i, c in enumerate(run_classes)}
    unknown = [c for c in ds_classes if c.lower() not in lower]
    if unknown:
        raise UserError(f"{root}: class(es) the run was not trained on: "
                        f"{', '.join(unknown)} (the run knows {', '.join(run_classes)})")
    return {i: lower[c.lower()] for i, c in enumerate(ds_classes)}


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike | None = None,
    split: str = "test",
    clips: int = 3,
    allow_seen: bool = False,
    out: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = False,
    batch_size: int | None = None,
    workers: int = 2,
    frame_step: int | None = None,
    fps: float | None = None,
    short: str | None = None,
    gallery: list[dict] | None = None,
) -> dict:
    """Evaluate a trained run on one split; returns the metrics (as in metrics.json).

    `frame_step` or `fps` (frames per second of video) replace the run's clip spacing
    (default: the one it was trained with); `short` how a video shorter than a clip is
    filled (default: the run's); the metrics record the sampling used. `gallery`:
    labelled prediction GIFs for report.html to show (see report.render_report).

    K = `clips` evenly spaced clips per video, their softmax probabilities averaged.
    Refuses the run's own train and val splits unless `allow_seen`. An output inside the
    run (the default RUN/eval/<split>) is written under the run's lock: not while `train`
    writes the run, and by one evaluation at a time (see models.runlock).
    """
    from vidaction.models.runlock import writing_into

    target = Path(out) if out is not None else Path(run) / "eval" / str(split)
    with writing_into(run, target, "vidaction evaluate", replaces=False):
        return _evaluate_run(run, data, split, clips, allow_seen, out, force, progress,
                             batch_size, workers, frame_step, fps, short, gallery)


def _evaluate_run(run, data, split, clips, allow_seen, out, force, progress, batch_size,
                  workers, frame_step=None, fps=None, short=None, gallery=None) -> dict:
    from vidaction.evaluate.metrics import compute_metrics
    from vidaction.models.run import load_run
    from vidaction.models.scoring import check_finite_logits, load_videos, score_videos
    from vidaction.progress import bar as progress_bar

    run = Path(run)
    if split not in EVAL_SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(EVAL_SPLITS)}")
    if clips < 1:
        raise UserError("--clips must be at least 1")
    config = _check_run(run)
    if split in SEEN_SPLITS and not allow_seen:
        raise UserError(f"{run} was {'trained' if split == 'train' else 'validated'} on the "
                        f"{split} split: its score there is not a fair estimate; evaluate on "
                        "test, or pass --allow-seen to score it anyway")
    out = Path(out) if out is not None else run / "eval" / split
    _check_out(out, force)

    own = data is None
    if data is None:
        recorded = config.get("train", {}).get("data") or ""
        if not recorded:
            raise UserError(f"{run}: config.json names no dataset; pass --data")
        data = run_data(run, config)  # also found beside a run moved with its data
        if data is None:
            rel = config.get("train", {}).get("data_from_run")
            beside = f" nor at {run / rel}" if rel else ""
            raise UserError(f"{recorded}: the run's dataset folder is not there{beside}; "
                            "pass --data")
    else:  # the run's split record describes the run's own dataset, not another one
        own = _same_folder(data, config.get("train", {}).get("data"))
    data = Path(data)
    videos, ds = eval_clips(config, data, split, run if own else None)
    if not videos:
        raise UserError(f"{data}: no videos in the {split} split "
                        f"(splits found: {', '.join(ds.splits) or 'none'})")
    classes = [c for c in (run / "classes.txt").read_text().splitlines() if c]
    to_run = _label_map(classes, ds.classes, data)
    if progress:  # TensorFlow and the weights: seconds before the bar appears
        print(f"vidaction: loading model {run} ...", file=sys.stderr, flush=True)
    loaded_run = load_run(run)
    from vidaction.data.sampling import SamplingConfig

    sampling = SamplingConfig(**config["sampling"])
    if frame_step and fps:
        raise UserError("--frame-step and --fps exclude each other")
    if frame_step or fps:  # in place of the run's spacing
        from dataclasses import replace

        sampling = replace(sampling, frame_step=frame_step or sampling.frame_step,
                           fps=None if frame_step else fps)
    if short:  # in place of the run's way of filling a video shorter than a clip
        from dataclasses import replace

        sampling = replace(sampling, short=short)
    batch = batch_size or int(config.get("train", {}).get("batch_size", 8))
    paths = [str(v.path) for v in videos]
    labels = [to_run[v.label] for v in videos]

    skipped: list[dict] = []
    bar = progress_bar(total=len(paths), desc=f"evaluating {split}", unit="video",
                       enabled=progress)

    from vidaction.models.pose_run import is_pose_config, load_keypoint_windows

    short_videos: list[str] = []  # shorter than one clip: scored on filled frames

    def readable():
        items = load_keypoint_windows(paths, config, clips) if is_pose_config(config) \
            else load_videos(paths, sampling, clips=clips, workers=workers)
        for item in items:
            if item.clips is None:
                skipped.append({"path": item.path, "reason": item.error})
                bar.write(f"vidaction: warning: skipping {item.path}: {item.error}",
                          file=sys.stderr)
                bar.update()
                continue
            if getattr(item, "short", False):
                short_videos.append(item.path)
            yield item.index, item.clips

    rows = []
    with bar:
        for scored in score_videos(loaded_run.predict_logits, readable(), batch_size=batch):
            check_finite_logits(scored.clip_logits, loaded_run, paths[scored.key])
            rows.append(scored)
            bar.update()
    if not rows:
        raise UserError(f"{data}: none of the {len(paths)} videos of the {split} split "
                        "could be read")

    y_true = np.array([labels[s.key] for s in rows])
    probs = np.stack([s.probs for s in rows])
    clip_correct = np.concatenate([s.clip_logits.argmax(axis=1) == labels[s.key]
                                   for s in rows])
    metrics = {
        "run": str(run),
        "data": str(data),
        "split": split,
        "seen_split": split in SEEN_SPLITS,
        "model": config.get("model", {}).get("name"),
        "sampling": sampling.as_dict(),
        "clips_per_video": clips,
        "averaging": AVERAGING,
        **compute_metrics(y_true, probs, classes, clip_correct=clip_correct),
        "clips_scored": int(len(clip_correct)),
        "skipped": len(skipped),
        "skipped_videos": skipped,
        "short_videos": len(short_videos),
    }
    if short_videos:
        from vidaction.data.sampling import SHORT_HELP

        note = (f"{len(short_videos)} of {len(rows)} videos are shorter than one clip "
                f"({sampling.span} frames), each {SHORT_HELP[sampling.short]} (--short), e.g. "
                f"{short_videos[0]}")
        metrics["warnings"] = [*metrics.get("warnings", []), note]
        warnings.warn(note, stacklevel=2)
    predictions = [{"path": paths[s.key], "true": y, "probs": s.probs}
                   for s, y in zip(rows, y_true, strict=True)]
    _write_outputs(out, run, config, ds, videos, metrics, predictions, classes, gallery)
    metrics["out"] = str(out)
    return metrics


def predictions_csv(predictions: list[dict], classes: list[str], k: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "true_label", "predicted_label", "correct",
                *[f"{c}{i + 1}" for i in range(k) for c in ("top", "prob")]])
    for p in predictions:
        order = np.argsort(-p["probs"], kind="stable")[:k]
        w.writerow([p["path"], classes[p["true"]], classes[order[0]],
                    int(order[0] == p["true"]),
                    *[v for j in order for v in (classes[j], f"{p['probs'][j]:.6f}")]])
    return buf.getvalue()


def _write_outputs(out: Path, run: Path, config: dict, ds, videos: list, metrics: dict,
                   predictions: list[dict], classes: list[str],
                   gallery: list[dict] | None = None) -> None:
    """Every output into a temporary folder, then renamed into place (see _publish)."""
    from vidaction.evaluate.plots import confusion_png, curves_png
    from vidaction.evaluate.report import misclassified_gifs, render_report
    from vidaction.io.writer import atomic_folder, write_atomic

    title = (f"{model_title(metrics)}: {metrics['videos']} videos, top-1 "
             f"{metrics['top1_accuracy']:.1%} (chance {chance(metrics):.1%})")
    cm_png = confusion_png(metrics["confusion_matrix"], classes, title=title)
    history = _history(run)
    name = metrics.get("model") or run.name
    curves = curves_png(history, title=f"{name}: training history") if history else None
    gifs = misclassified_gifs(predictions, classes, GIF_VIDEOS)
    html = render_report(metrics=metrics, config=config, dataset=ds, videos=videos,
                         confusion=cm_png, curves=curves, gifs=gifs, gallery=gallery)
    with atomic_folder(out, publish=_publish) as tmp:
        write_json(tmp / "metrics.json", metrics)
        write_atomic(tmp / "predictions.csv", predictions_csv(predictions, classes,
                                                              metrics["top_k"]))
        write_atomic(tmp / "confusion_matrix.png", cm_png)
        if curves is not None:
            write_atomic(tmp / "curves.png", curves)
        write_atomic(tmp / "report.html", html)


def _history(run: Path) -> list[dict]:
    try:
        return list(read_json(run / "history.json").get("epochs", []))
    except RunError:
        return []


def format_summary(m: dict) -> str:
    """The console table."""
    k = m["top_k"]
    lines = [
        f"{model_title(m)} ({m['run']}, data {m['data']}): {m['videos']} videos, "
        f"{m['clips_per_video']} clip(s) each, {m['skipped']} skipped",
        f"  {'top-1 accuracy (video)':<26}{m['top1_accuracy']:>8.1%}   chance "
        f"{chance(m):.1%}",
        *([f"  {f'top-{k} accuracy (video)':<26}{m['top5_accuracy']:>8.1%}"]
          if shows_top_k(m) else []),
        f"  {'top-1 accuracy (clip)':<26}{m['clip_top1_accuracy']:>8.1%}",
        f"  {'mean class accuracy':<26}{m['mean_class_accuracy']:>8.1%}",
        f"  {'macro P / R / F1':<26}{m['macro_precision']:>8.3f}{m['macro_recall']:>7.3f}"
        f"{m['macro_f1']:>7.3f}",
        f"  {'weighted P / R / F1':<26}{m['weighted_precision']:>8.3f}"
        f"{m['weighted_recall']:>7.3f}{m['weighted_f1']:>7.3f}",
        f"  {'loss (cross-entropy)':<26}{m['loss']:>8.4f}",
    ]
    per = m["per_class"]
    worst = sorted((c for c in per if per[c]["support"]), key=lambda c: (per[c]["f1"], c))[:3]
    if worst and len(per) > 3:
        lines.append("  lowest F1: " + ", ".join(f"{c} {per[c]['f1']:.2f}" for c in worst))
    if m.get("out"):
        lines.append(f"written to {m['out']}/: " + ", ".join(
            f for f in OUTPUTS if (Path(m["out"]) / f).exists()))
    return "\n".join(lines)
