"""Classification metrics from per-video probabilities (scikit-learn underneath).

Every number is a plain finite float or int, so metrics.json never holds NaN: a class the
model never predicted gets precision 0 (with a warning naming it). A class with neither
videos in the split nor predictions is listed with zeros but left out of the macro and
weighted averages and the mean class accuracy (as scikit-learn does without `labels`), so
a test split that lacks a class does not drag the averages down.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class NoPredictionWarning(UserWarning):
    """Some class was never predicted: its precision is reported as 0."""


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the k highest scores (k capped at C)."""
    from sklearn.metrics import top_k_accuracy_score

    n_classes = probs.shape[1]
    if k >= n_classes:
        return 1.0
    if n_classes == 2:  # scikit-learn's binary form wants one column; k must be 1 here
        return float(np.mean(probs.argmax(axis=1) == y_true))
    return float(top_k_accuracy_score(y_true, probs, k=k, labels=np.arange(n_classes)))


def compute_metrics(y_true: Sequence[int], probs: np.ndarray, classes: Sequence[str],
                    clip_correct: Sequence[bool] | None = None, top_k: int = 5) -> dict:
    """Video-level metrics from true labels (N,) and averaged probabilities (N, C).

    `clip_correct`: one flag per scored clip, for the clip-level top-1 accuracy.
    """
    from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = len(classes)
    if probs.ndim != 2 or probs.shape != (len(y_true), n_classes):
        raise ValueError(f"probabilities of shape {probs.shape} for {len(y_true)} videos "
                         f"and {n_classes} classes")
    if len(y_true) == 0:
        raise ValueError("no videos to score")
    labels = np.arange(n_classes)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    avg = {}
    seen = np.union1d(y_true, y_pred)  # scikit-learn's default: classes absent from both
    for mode in ("macro", "weighted"):  # the split and the predictions do not count
        ap, ar, af, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=seen, average=mode, zero_division=0)
        avg[mode] = (float(ap), float(ar), float(af))
    predicted = cm.sum(axis=0)
    out_warnings = []
    never = [classes[i] for i in labels if predicted[i] == 0 and support[i] > 0]
    if never:
        msg = f"never predicted, so precision is set to 0: {', '.join(never)}"
        warnings.warn(msg, NoPredictionWarning, stacklevel=2)
        out_warnings.append(msg)
    present = support > 0
    k = min(top_k, n_classes)
    loss = float(log_loss(y_true, probs, labels=labels))  # clipped at float eps inside
    metrics = {
        "videos": int(len(y_true)),
        "loss": loss,
        "top1_accuracy": float(np.mean(y_pred == y_true)),
        "top5_accuracy": top_k_accuracy(y_true, probs, k),
        "top_k": k,
        "clip_top1_accuracy": (float(np.mean(clip_correct)) if clip_correct is not None
                               and len(clip_correct) else None),
        "mean_class_accuracy": float(np.mean(np.diag(cm)[present] / support[present])),
        "macro_precision": avg["macro"][0],
        "macro_recall": avg["macro"][1],
        "macro_f1": avg["macro"][2],
        "weighted_precision": avg["weighted"][0],
        "weighted_recall": avg["weighted"][1],
        "weighted_f1": avg["weighted"][2],
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                   "support": int(support[i]), "predicted": int(predicted[i])}
            for i, name in enumerate(classes)},
        "classes": list(classes),
        "confusion_matrix": cm.astype(int).tolist(),
        "warnings": out_warnings,
    }
    _check_finite(metrics)
    return metrics


def most_confused(cm: Sequence[Sequence[int]], classes: Sequence[str],
                  n: int = 10) -> list[dict]:
    """The largest off-diagonal cells: (true, predicted, count, share of the true class)."""
    cm = np.asarray(cm)
    rows = cm.sum(axis=1)
    pairs = [(int(cm[i, j]), i, j) for i in range(len(cm)) for j in range(len(cm))
             if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"true": classes[i], "predicted": classes[j], "count": c,
             "share": c / rows[i]} for c, i, j in pairs[:n]]


def _check_finite(obj, where: str = "metrics") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def model_title(m: dict) -> str:
    """What the report, the plots and the console call the evaluation: the model, not the
    run folder's name (which is "run" as often as not)."""
    return f"{m.get('model') or Path(m['run']).name} on the {m['split']} split"


def chance(m: dict) -> float:
    """Top-1 of guessing uniformly: what an accuracy is to be read against."""
    return 1.0 / max(1, len(m.get("classes") or m.get("per_class") or [0]))


def shows_top_k(m: dict) -> bool:
    """Top-k says nothing when k is nearly every class (top-5 of 5 classes is always 100%)."""
    return len(m.get("classes") or m.get("per_class") or []) > 5
