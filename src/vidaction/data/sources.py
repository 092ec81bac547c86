"""Where clips come from: the three folder layouts users have, turned into one list of
(path, class, split) with one class-id mapping.

Layouts, detected in this order:
1. CSV manifests: ROOT/train.csv and ROOT/test.csv (and optionally val.csv) with columns
   `video_name,tag`; videos in ROOT/ or ROOT/<split>/.
2. Split folders: ROOT/<split>/<class>/<video>, split in train/val/test.
3. Class folders: ROOT/<class>/<video>, split here, stratified and seeded.
Class ids are the sorted class names, stored once in ROOT/classes.txt and reused after.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidaction.errors import VidactionError
from vidaction.io import VIDEO_EXTENSIONS
from vidaction.io.writer import atomic_path
from vidaction.progress import counted

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}
_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$", re.IGNORECASE)


class DatasetError(VidactionError):
    """A dataset folder we cannot make sense of; the message says why and where."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: int
    class_name: str
    split: str
    group: str  # clips sharing a group (actor, scene) never straddle splits


@dataclass
class Dataset:
    root: Path
    layout: str
    classes: list[str]
    clips: list[Clip]
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]

    def counts(self) -> dict[str, Counter]:
        """class name -> Counter(split -> clips)."""
        out: dict[str, Counter] = {c: Counter() for c in self.classes}
        for c in self.clips:
            out[c.class_name][c.split] += 1
        return out

    @property
    def splits(self) -> list[str]:
        present = {c.split for c in self.clips}
        return [s for s in SPLITS if s in present]


def _is_video(p: Path) -> bool:
    """By name, not by is_file(): a broken link, a symlink loop or a FIFO named *.mp4 is
    listed, so the reader can say what it is instead of the file silently vanishing."""
    return (p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
            and not p.is_dir())


def group_of(path: Path, class_name: str) -> str:
    """UCF101-style names carry their group (same actor and room): v_<Class>_g<NN>_c<NN>."""
    m = _UCF_NAME.match(path.stem)
    if m:
        return f"{m['cls'].lower()}/g{int(m['group']):02d}"
    return f"{class_name}/{path.stem}"


def read_classes(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from Notepad is fine
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text") from None
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(set(names)) != len(names):
        raise DatasetError(f"{path}: repeated class names")
    first: dict[str, str] = {}
    for n in names:
        if n.lower() in first:
            raise DatasetError(f"{path}: {first[n.lower()]} and {n} differ only in case, and "
                               "class names match without regard to case: keep one")
        first[n.lower()] = n
    return names


def write_classes(path: Path, classes: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{c}\n" for c in classes))


def resolve_classes(root: Path, found: Iterable[str], write: bool = True) -> list[str]:
    """The id mapping: ROOT/classes.txt if present (every class found must be in it), else
    the sorted names found, written there once so later runs keep the same ids. `found`
    has one name per clip: names differing only in case are one class, spelt as most
    clips spell it."""
    found = list(found)
    f = root / "classes.txt"
    if f.exists():
        classes = read_classes(f)
        lower = {c.lower(): c for c in classes}
        unknown = sorted(c for c in found if c not in classes and c.lower() not in lower)
        if unknown:
            raise DatasetError(f"{f}: classes found in the data but not listed: "
                               f"{', '.join(unknown)}")
        return classes
    counts = Counter(found)
    spellings: dict[str, list[str]] = defaultdict(list)
    for name in counts:
        spellings[name.lower()].append(name)
    classes = sorted(min(names, key=lambda n: (-counts[n], n)) for names in spellings.values())
    if write and classes:
        try:
            write_classes(f, classes)
        except OSError:
            pass  # read-only dataset: the mapping still holds, the run folder keeps a copy
    return classes


def _canonical(name: str, classes: list[str]) -> str:
    """Match class names without regard to case (HandstandPushups vs HandStandPushups)."""
    if name in classes:
        return name
    lower = {c.lower(): c for c in classes}
    return lower.get(name.lower(), name)


def load_dataset(
    root: str | os.PathLike,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    write_classes_file: bool = True,
) -> Dataset:
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    if (root / "train.csv").exists() or (root / "test.csv").exists():
        return _from_csv(root, val_fraction, seed, write_classes_file)
    subdirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    split_dirs = {d: _SPLIT_ALIASES[d.name.lower()] for d in subdirs
                  if d.name.lower() in _SPLIT_ALIASES}
    if split_dirs:
        return _from_split_folders(root, split_dirs, write_classes_file)
    return _from_class_folders(root, subdirs, val_fraction, test_fraction, seed,
                               write_classes_file)


def _from_split_folders(root: Path, split_dirs: dict[Path, str], write: bool) -> Dataset:
    raw: list[tuple[Path, str, str]] = []
    notes = []
    for d, split in sorted(split_dirs.items()):
        for cdir in sorted(x for x in d.iterdir() if x.is_dir() and not x.name.startswith(".")):
            for f in sorted(cdir.iterdir()):
                if _is_video(f):
                    raw.append((f, cdir.name, split))
        loose = [f.name for f in d.iterdir() if _is_video(f)]
        if loose:
            notes.append(f"{d}: {len(loose)} video(s) outside any class folder ignored")
    if not raw:
        raise DatasetError(f"{root}: split folders hold no <class>/<video> files")
    classes = resolve_classes(root, [c for _, c, _ in raw], write)
    clips = [_clip(f, c, s, classes) for f, c, s in raw]
    return Dataset(root, "split-folders", classes, clips, notes)


def _clip(path: Path, class_name: str, split: str, classes: list[str]) -> Clip:
    name = _canonical(class_name, classes)
    return Clip(path, classes.index(name), name, split, group_of(path, name))


def _from_class_folders(root: Path, subdirs: list[Path], val_fraction: float,
                        test_fraction: float, seed: int, write: bool) -> Dataset:
    per_class: dict[str, list[Path]] = {}
    for cdir in sorted(subdirs):
        vids = sorted(f for f in cdir.iterdir() if _is_video(f))
        if vids:
            per_class[cdir.name] = vids
    if not per_class:
        loose = [f for f in root.iterdir() if _is_video(f)]
        if loose:  # a flat folder of videos: the labels are missing, not the videos
            raise DatasetError(f"{root}: {counted(len(loose), 'video')} but no class folders; "
                               "a dataset has one folder per class (ROOT/<class>/<video>, or "
                               "ROOT/<split>/<class>/<video>), or train.csv/test.csv "
                               "listing each video's class")
        raise DatasetError(f"{root}: no videos found (expected <class>/<video> folders, "
                           "<split>/<class>/<video>, or train.csv/test.csv)")
    classes = resolve_classes(root, [n for n, vids in per_class.items() for _ in vids],
                              write)
    clips = []
    for name, vids in per_class.items():
        groups = defaultdict(list)
        for v in vids:
            groups[group_of(v, name)].append(v)
        assign = stratified_split(sorted(groups), val_fraction, test_fraction,
                                  seed=(seed, name), sizes=[len(groups[g]) for g in sorted(groups)])
        for g, split in assign.items():
            clips.extend(_clip(v, name, split, classes) for v in groups[g])
    clips.sort(key=lambda c: c.path)
    notes = [f"split drawn here: seed {seed}, val {val_fraction:g}, test {test_fraction:g}, "
             "by group where file names carry one"]
    return Dataset(root, "class-folders", classes, clips, notes)


def stratified_split(
    items: list[str], val_fraction: float, test_fraction: float, seed: tuple | int,
    sizes: list[int] | None = None,
) -> dict[str, str]:
    """Assign whole items (groups of one class) to train/val/test, seeded and stable.

    Targets are counted in clips (`sizes`), so a class of 10 clips gets about 2 for val and
    2 for test; train always keeps at least one item.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DatasetError("val and test fractions must be in [0, 1) and sum below 1")
    sizes = sizes or [1] * len(items)
    key = seed if isinstance(seed, int) else zlib.crc32(repr(seed).encode())
    rng = np.random.default_rng(key)
    order = rng.permutation(len(items))
    total = sum(sizes)
    want = {"test": round(total * test_fraction), "val": round(total * val_fraction)}
    out, got = {}, Counter()
    for rank, i in enumerate(order):
        left = len(order) - rank
        split = "train"
        for s in ("test", "val"):
            if got[s] < want[s] and left > 1 - (got["train"] > 0):
                split = s
                break
        out[items[i]] = split
        got[split] += sizes[i]
    return out


def _read_manifest(f: Path) -> list[tuple[int, str, str]]:
    """(line, video_name, tag) per row. A UTF-8 BOM (Excel's "CSV UTF-8") is accepted."""
    try:
        with open(f, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [(n or "").strip() for n in reader.fieldnames or []]
            reader.fieldnames = fields
            if not {"video_name", "tag"} <= set(fields):
                raise DatasetError(f"{f}: needs columns video_name,tag (found "
                                   f"{','.join(fields) or 'none'})")
            rows = []
            for line, row in enumerate(reader, start=2):
                name, tag = (row["video_name"] or "").strip(), (row["tag"] or "").strip()
                if not name or not tag:
                    raise DatasetError(f"{f}:{line}: empty video_name or tag")
                rows.append((line, name, tag))
    except UnicodeDecodeError:
        raise DatasetError(f"{f}: not UTF-8 text (save it as \"CSV UTF-8\")") from None
    return rows


def _from_csv(root: Path, val_fraction: float, seed: int, write: bool) -> Dataset:
    rows: list[tuple[Path, str, str]] = []
    notes = []
    seen: dict[Path, tuple[str, str, str]] = {}  # video -> (tag, split, "file:line")
    duplicates: list[str] = []
    for split in SPLITS:
        f = root / f"{split}.csv"
        if not f.exists():
            continue
        for line, name, tag in _read_manifest(f):
            path = _find_video(root, split, name)
            where = f"{f.name}:{line}"
            prev = seen.get(path.resolve())
            if prev is None:
                seen[path.resolve()] = (tag, split, where)
                rows.append((path, tag, split))
            elif prev[1] != split:  # a test leak, or a contradiction of the split
                raise DatasetError(f"{path}: listed in both {prev[2]} and {where}; a video "
                                   "belongs to one split")
            elif prev[0].lower() != tag.lower():
                raise DatasetError(f"{path}: two tags, {prev[0]} ({prev[2]}) and {tag} "
                                   f"({where}); a video has one")
            else:
                duplicates.append(where)
    if duplicates:
        warnings.warn(f"{root}: {len(duplicates)} duplicate row(s) ignored ("
                      + ", ".join(duplicates[:3]) + (", ..." if len(duplicates) > 3 else "")
                      + ")", stacklevel=3)
    classes = resolve_classes(root, [t for _, t, _ in rows], write)
    clips = [_clip(p, t, s, classes) for p, t, s in rows]
    trained = {c.class_name for c in clips if c.split != "test"}
    test_only = sorted({c.class_name for c in clips if c.split == "test"} - trained)
    if test_only and trained:
        warnings.warn(f"{root / 'test.csv'}: tag(s) found only in test, never trained on: "
                      + ", ".join(test_only), stacklevel=3)
    if not any(c.split == "val" for c in clips) and val_fraction > 0:
        train = [c for c in clips if c.split == "train"]
        by_class = defaultdict(list)
        for c in train:
            by_class[c.class_name].append(c)
        moved = set()
        for name, cs in by_class.items():
            groups = sorted({c.group for c in cs})
            sizes = [sum(c.group == g for c in cs) for g in groups]
            assign = stratified_split(groups, val_fraction, 0.0, seed=(seed, name), sizes=sizes)
            moved |= {g for g, s in assign.items() if s == "val"}
        clips = [Clip(c.path, c.label, c.class_name, "val", c.group)
                 if c.split == "train" and c.group in moved else c for c in clips]
        notes.append(f"no val.csv: validation carved from train by group (seed {seed})")
    return Dataset(root, "csv", classes, clips, notes)


def _find_video(root: Path, split: str, name: str) -> Path:
    for cand in (root / name, root / split / name, root / "videos" / name):
        if cand.exists():
            return cand
    return root / split / name if (root / split).is_dir() else root / name
