"""The evaluation's pictures: confusion matrix and training curves, as PNG bytes.

Matplotlib with the Agg backend (no display needed). The confusion matrix grows with the
class count: cells keep a readable size (about 0.16 inch at 101 classes, up to 0.5 inch
for a handful), fonts follow the cell size, and counts are written into the cells only
while they fit.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def _figure(figsize: tuple[float, float]):
    """A bare Figure rendered by Agg: no pyplot, so no GUI backend and no global state."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _png(fig, dpi: int) -> bytes:
    buf = io.BytesIO()
    # no software tag: the same numbers give the same bytes
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def confusion_geometry(n_classes: int) -> dict:
    """Cell size (inches) and font sizes (points) for an n x n matrix."""
    cell = min(0.5, max(0.16, 8.0 / max(n_classes, 1)))
    tick = min(11.0, max(5.5, cell * 72 * 0.45))
    return {"cell": cell, "tick": tick, "annotate": n_classes <= 40,
            "annot": min(10.0, max(4.5, cell * 72 * 0.34)),
            "stacked": n_classes > 30, "dpi": 130 if n_classes > 60 else 120}


def _cmap():
    """Blues from a visible light blue up, with empty cells white: a single confusion
    among 101 classes still shows."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    blues = matplotlib.colormaps["Blues"](np.linspace(0.18, 1.0, 256))
    return ListedColormap(blues).with_extremes(bad="white")


def confusion_png(cm: Sequence[Sequence[int]], classes: Sequence[str],
                  title: str = "") -> bytes:
    """Counts and row-normalised heat maps, rows = true class, columns = predicted."""
    cm = np.asarray(cm, dtype=float)
    n = len(classes)
    g = confusion_geometry(n)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = max(3.0, n * g["cell"])
    if g["stacked"]:
        fig = _figure((side + 1.2, 2 * side + 1.0))
        axes = fig.subplots(2, 1)
    else:
        fig = _figure((2 * side + 2.4, side + 0.6))
        axes = fig.subplots(1, 2)
    panels = [(cm, "counts", "{:.0f}", cm.max() if cm.size else 1),
              (norm, "row-normalised (share of each true class)", "{:.2f}", 1.0)]
    for ax, (data, name, fmt, vmax) in zip(axes, panels, strict=True):
        im = ax.imshow(np.ma.masked_equal(data, 0), cmap=_cmap(), vmin=0, vmax=max(vmax, 1e-9),
                       interpolation="nearest", aspect="equal")
        ax.set_title(name, fontsize=max(g["tick"] + 2, 9))
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(classes, rotation=90, fontsize=g["tick"])
        ax.set_yticklabels(classes, fontsize=g["tick"])
        ax.set_xlabel("predicted class", fontsize=max(g["tick"] + 1, 8))
        ax.set_ylabel("true class", fontsize=max(g["tick"] + 1, 8))
        ax.tick_params(length=2, pad=1)
        # faint grid between cells: rows stay traceable in big matrices
        ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(which="minor", color="#d8d8d8", linewidth=0.3)
        ax.tick_params(which="minor", length=0)
        if g["annotate"]:
            for i, j in zip(*np.nonzero(data), strict=True):
                v = data[i, j]
                text = fmt.format(v)
                if fmt == "{:.2f}":
                    text = "1" if v >= 0.995 else text.lstrip("0")
                ax.text(j, i, text, ha="center", va="center", fontsize=g["annot"],
                        color="white" if v > 0.55 * vmax else "#1a1a1a")
        cb = fig.colorbar(im, ax=ax, shrink=0.6 if g["stacked"] else 0.8, pad=0.01)
        cb.ax.tick_params(labelsize=max(g["tick"], 7))
        if fmt == "{:.0f}":
            cb.ax.yaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=max(g["tick"] + 3, 11))
    return _png(fig, g["dpi"])


def curves_png(epochs: Sequence[dict], title: str = "") -> bytes:
    """Loss and accuracy per epoch, train and validation; the kept (best) epoch marked."""
    fig = _figure((10, 3.8))
    axes = fig.subplots(1, 2)
    x = [e["epoch"] for e in epochs]
    best = [e["epoch"] for e in epochs if e.get("best")]
    for ax, key, name in ((axes[0], "loss", "loss (cross-entropy)"),
                          (axes[1], "accuracy", "accuracy")):
        for prefix, label, style in (("", "train", "-o"), ("val_", "validation", "-s")):
            ys = [e.get(prefix + key) for e in epochs]
            pts = [(a, b) for a, b in zip(x, ys, strict=True) if b is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=label, markersize=4)
        if best:
            ax.axvline(best[-1], color="#888", linestyle="--", linewidth=1,
                       label=f"kept: epoch {best[-1]}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if key == "accuracy":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _png(fig, 110)
