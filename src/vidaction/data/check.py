"""`vidaction data check`: what a dataset holds and which files will not read."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vidaction.data.sources import SPLITS, Dataset, load_dataset
from vidaction.io import VideoReadError, probe, verify


@dataclass
class CheckReport:
    dataset: Dataset
    bad: list[tuple[Path, str]]  # (file, reason), in dataset order

    @property
    def good_counts(self) -> dict[str, dict[str, int]]:
        bad = {p for p, _ in self.bad}
        out = {c: dict.fromkeys(SPLITS, 0) for c in self.dataset.classes}
        for c in self.dataset.clips:
            if c.path not in bad:
                out[c.class_name][c.split] += 1
        return out


def _check_one(path: Path, quick: bool) -> str | None:
    try:
        (probe if quick else verify)(path)
    except VideoReadError as e:
        return e.reason
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file, not a crash
        return f"unreadable: {type(e).__name__}: {e}"
    return None


def check_dataset(root: Path, val_fraction: float = 0.2, test_fraction: float = 0.2,
                  seed: int = 0, quick: bool = False, progress: bool = True,
                  workers: int = 2) -> CheckReport:
    ds = load_dataset(root, val_fraction, test_fraction, seed)
    paths = [c.path for c in ds.clips]
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(tqdm(pool.map(lambda p: _check_one(p, quick), paths), total=len(paths),
                            desc="checking", unit="file", disable=not progress,
                            file=sys.stderr))
    bad = [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]
    return CheckReport(ds, bad)


def format_report(report: CheckReport) -> str:
    ds = report.dataset
    counts = report.good_counts
    splits = [s for s in SPLITS if any(c[s] for c in counts.values())] or list(SPLITS)
    width = max([len("class")] + [len(c) for c in ds.classes])
    head = f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits) + f"  {'total':>6}"
    lines = [f"{ds.root}  ({ds.layout}, {len(ds.classes)} classes, {len(ds.clips)} files)",
             *ds.notes, head, "-" * len(head)]
    totals = dict.fromkeys(splits, 0)
    for c in ds.classes:
        row = [counts[c][s] for s in splits]
        for s, n in zip(splits, row, strict=True):
            totals[s] += n
        lines.append(f"{c:<{width}}  " + "  ".join(f"{n:>6}" for n in row) + f"  {sum(row):>6}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{totals[s]:>6}" for s in splits)
                 + f"  {sum(totals.values()):>6}")
    empty = [c for c in ds.classes if not sum(counts[c].values())]
    if empty:
        lines.append(f"classes with no readable clip: {', '.join(empty)}")
    if report.bad:
        lines.append(f"{len(report.bad)} unreadable file(s):")
        lines.extend(f"  {p}: {r}" for p, r in report.bad)
    else:
        lines.append("all files readable")
    return "\n".join(lines)
