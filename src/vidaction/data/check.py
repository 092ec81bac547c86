"""`vidaction data check`: what a dataset holds and which files will not read.

A header that parses says little: a file can break at frame 29. So by default each file's
frames that training and evaluation read by index are decoded, through the same seek path
they use (`VideoReader.read`), and `full` also decodes every frame in order and compares
the count with the index. A file that breaks is located by a sequential decode, so its
reason names the first frame that will not decode.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vidaction.data.pipeline import CACHE_POSITIONS
from vidaction.data.sampling import SamplingConfig, fit_geometry, sampled_indices
from vidaction.data.sources import SPLITS, Dataset, load_dataset
from vidaction.io import VideoInfo, VideoReader, VideoReadError
from vidaction.progress import bar as progress_bar
from vidaction.progress import counted

MODES = ("quick", "sampled", "full")
# Clip counts that runs place with eval_starts: validation's centre clip, the 3 of
# `evaluate` and `predict`, the clip cache's positions (also --cache-samples' default).
POSITIONS = (1, 3, CACHE_POSITIONS)


@dataclass
class FileCheck:
    path: Path
    split: str
    class_name: str
    reason: str | None = None  # None: readable
    info: VideoInfo | None = None  # after reading: read_mode is the one the reader settled on
    decoded: int | None = None  # frames of a sequential decode, where one ran

    @property
    def ok(self) -> bool:
        return self.reason is None

    def as_dict(self) -> dict:
        i = self.info
        return {"path": str(self.path), "split": self.split, "class": self.class_name,
                "ok": self.ok, "reason": self.reason,
                "frames": i.frame_count if i else None,
                "fps": round(i.fps, 3) if i else None,
                "size": f"{i.width}x{i.height}" if i else None,
                "codec": i.codec if i else None,
                "read_mode": i.read_mode if i else None,
                "backend": i.backend if i else None,
                "decoded": self.decoded}


@dataclass
class CheckReport:
    dataset: Dataset
    files: list[FileCheck]  # in dataset order
    mode: str = "sampled"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    @property
    def bad(self) -> list[tuple[Path, str]]:
        """(file, reason) of every unreadable file, in dataset order."""
        return [(f.path, f.reason) for f in self.files if f.reason is not None]

    @property
    def good_counts(self) -> dict[str, dict[str, int]]:
        out = {c: dict.fromkeys(SPLITS, 0) for c in self.dataset.classes}
        for f in self.files:
            if f.ok:
                out[f.class_name][f.split] += 1
        return out

    @property
    def short(self) -> list[FileCheck]:
        """Readable videos shorter than one clip spans (each at its own rate with --fps):
        their clips are filled (train/evaluate/predict --short), not all real frames."""
        return [f for f in self.files if f.ok and f.info is not None
                and self.sampling.at_rate(f.info.fps).is_short(f.info.frame_count)]

    def as_dict(self) -> dict:
        """Everything `--json` prints: per-file entries and the summary."""
        ds = self.dataset
        counts = self.good_counts
        return {"root": str(ds.root), "layout": ds.layout, "check": self.mode,
                "sampling": {"frames": self.sampling.n_frames,
                             "frame_step": self.sampling.frame_step},
                "classes": list(ds.classes), "notes": list(ds.notes),
                "files": [f.as_dict() for f in self.files],
                "summary": {"files": len(self.files),
                            "readable": sum(f.ok for f in self.files),
                            "unreadable": len(self.bad), "counts": counts,
                            "shorter_than_a_clip": len(self.short),
                            "clip_span_frames": self.sampling.span,
                            "classes_without_readable_clip":
                                [c for c in ds.classes if not sum(counts[c].values())]}}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _decode_all(r: VideoReader) -> tuple[int, str | None]:
    """(frames decoded in order, why that is wrong or None)."""
    n = 0
    try:
        for _ in r.iter_frames():
            n += 1
    except VideoReadError as e:
        return n, f"frame {n} of {r.frame_count} could not be decoded: {e.reason}"
    if n < r.frame_count:
        return n, f"truncated: frame {n} of {r.frame_count} could not be decoded " \
                  "(a sequential decode ends there)"
    if n > r.frame_count:
        return n, f"frame count wrong: a sequential decode gives {n} frames, the index " \
                  f"{r.frame_count}"
    return n, None


def _read_sampled(r: VideoReader, cfg: SamplingConfig) -> None:
    """The sampled frames, resized as training resizes them (small, and the same path)."""
    sw, sh, _ = fit_geometry(r.info.width, r.info.height, cfg.size, "letterbox")
    cfg = cfg.at_rate(r.info.fps)
    r.read(sampled_indices(r.frame_count, cfg, POSITIONS), decode_size=(sw, sh))


def check_file(path: Path, mode: str = "sampled",
               cfg: SamplingConfig | None = None) -> tuple[str | None, VideoInfo | None,
                                                           int | None]:
    """(reason or None, info, frames of a sequential decode or None) for one file.

    quick: open it (header and index); sampled: also decode the frames runs read by index;
    full: also decode every frame in order."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    cfg = cfg or SamplingConfig()
    info: VideoInfo | None = None
    decoded: int | None = None
    try:
        with VideoReader(path, threads=1) as r:
            info = r.info
            if mode == "quick":
                return None, info, None
            if r.truncated:
                return f"truncated: {r.truncated}", info, None
            try:
                _read_sampled(r, cfg)
            except VideoReadError as e:
                # where does it break? A sequential decode names the frame
                info = r.info
                decoded, where = _decode_all(r)
                return _one_line(where or f"reading frames by index failed ({e.reason}), "
                                 f"though a sequential decode reads all {decoded} frames"), \
                    r.info, decoded
            info = r.info  # reading may have switched the reading mode
            if mode == "full":
                decoded, why = _decode_all(r)
                return why and _one_line(why), r.info, decoded
    except VideoReadError as e:
        return _one_line(e.reason), info, decoded
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file, not a crash
        return _one_line(f"unreadable: {type(e).__name__}: {e}"), info, decoded
    return None, info, decoded


def check_dataset(root: Path, val_fraction: float = 0.2, test_fraction: float = 0.2,
                  seed: int = 0, quick: bool = False, progress: bool = True,
                  workers: int = 2, full: bool = False,
                  sampling: SamplingConfig | None = None) -> CheckReport:
    """Check every file of the dataset at `root` (see `check_file`; quick and full pick
    the mode, sampled otherwise)."""
    if quick and full:
        raise ValueError("quick and full exclude each other")
    mode = "quick" if quick else "full" if full else "sampled"
    cfg = sampling or SamplingConfig()
    ds = load_dataset(root, val_fraction, test_fraction, seed, write_classes_file=False)
    if ds.split("train") and not ds.split("val"):  # what `train` will do, said here
        ds.notes.append(f"no val split: `train` carves {val_fraction:g} of the training "
                        f"videos, by group, for validation (--val-fraction, "
                        f"--seed {seed})")
    with ThreadPoolExecutor(workers) as pool:
        results = list(progress_bar(pool.map(lambda c: check_file(c.path, mode, cfg),
                                             ds.clips),
                                    total=len(ds.clips), desc="checking", unit="file",
                                    enabled=progress))
    files = [FileCheck(c.path, c.split, c.class_name, reason, info, decoded)
             for c, (reason, info, decoded) in zip(ds.clips, results, strict=True)]
    return CheckReport(ds, files, mode, cfg)


def format_files(report: CheckReport) -> str:
    """One line per file: frames, fps, size, codec, reading mode, ok or bad, the file (and
    its reason)."""
    rows = [("frames", "fps", "size", "codec", "mode", "status", "file")]
    for f in report.files:
        i = f.info
        cells = ((str(i.frame_count), f"{i.fps:.2f}", f"{i.width}x{i.height}", i.codec,
                  i.read_mode) if i else ("-",) * 5)
        rows.append((*cells, "ok" if f.ok else "bad",
                     str(f.path) + ("" if f.ok else f": {f.reason}")))
    widths = [max(len(r[k]) for r in rows) for k in range(6)]
    return "\n".join("  ".join(c.rjust(w) if k < 3 else c.ljust(w)
                               for k, (c, w) in enumerate(zip(r, widths, strict=False)))
                     + "  " + r[6] for r in rows)


def format_report(report: CheckReport, verbose: bool = False) -> str:
    ds = report.dataset
    counts = report.good_counts
    splits = [s for s in SPLITS if any(c[s] for c in counts.values())] or list(SPLITS)
    width = max([len("class")] + [len(c) for c in ds.classes])
    head = f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in splits) + f"  {'total':>6}"
    lines = [f"{ds.root}  ({ds.layout}, {counted(len(ds.classes), 'class')}, "
             f"{counted(len(ds.clips), 'file')})",
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
    if verbose:
        lines += ["", format_files(report), ""]
    empty = [c for c in ds.classes if not sum(counts[c].values())]
    if empty:
        lines.append(f"classes with no readable clip: {', '.join(empty)}")
    short = report.short
    if short:
        cfg = report.sampling
        readable = counted(sum(f.ok for f in report.files), "readable video")
        lines.append(f"{len(short)} of {readable} {'is' if len(short) == 1 else 'are'} "
                     f"shorter than one clip ({cfg.span} frames: {cfg.n_frames} frames "
                     f"{cfg.frame_step} apart); runs loop, pad or stretch them (--short), "
                     f"e.g. {short[0].path} ({short[0].info.frame_count} frames)")
    if report.bad:
        lines.append(f"{len(report.bad)} unreadable file(s):")
        lines.extend(f"  {p}: {r}" for p, r in report.bad)
    else:
        lines.append("all files readable")
    return "\n".join(lines)
