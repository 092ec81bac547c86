"""What a run trained on, so that a dataset that has grown since keeps the run's split.

A class-folder dataset (ROOT/<class>/<video>) is split by a seeded draw over its groups:
add videos and the draw moves old ones, so a test split read later could hold clips the
model trained on. A run therefore stores which file, and which group (actor), went where
(RUN/split.json, paths relative to the data root so a moved dataset still matches). Read
back against today's dataset:

- a recorded file keeps its recorded split;
- a new file of a recorded group (an actor the run saw) goes where that group went;
- a new file of a new group keeps today's split: nobody in it was seen in training.

The same holds for split folders and CSV layouts, where a file moved from train/ to test/
is still the training clip it was.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from vidaction.data.sources import Clip, Dataset

FILE = "split.json"
VERSION = 1


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive (Windows): the absolute path is the key
        return Path(path).as_posix()


def _group(c: Clip) -> str:
    return f"{c.class_name}/{c.group}"


def split_record(ds: Dataset, train: Sequence[Clip], val: Sequence[Clip]) -> dict:
    """The record of a new run: its train and val clips (val may be carved from train) and
    the dataset's test clips, each as a path relative to the data root and a group."""
    splits = {"train": list(train), "val": list(val), "test": ds.split("test")}
    return {"version": VERSION, "layout": ds.layout,
            "files": {s: sorted(_rel(c.path, ds.root) for c in clips)
                      for s, clips in splits.items()},
            "groups": {s: sorted({_group(c) for c in clips}) for s, clips in splits.items()}}


@dataclasses.dataclass
class Applied:
    dataset: Dataset
    added: Counter  # new files since the run, by the split they went to
    seen_actor: int  # of those, files of a group the run trained or validated on
    missing: int  # recorded files no longer there
    moved: int  # recorded files that today's draw or folders put elsewhere

    def note(self) -> str | None:
        """One line when the dataset differs from what the run recorded; None if not."""
        parts = []
        if self.moved:
            parts.append(f"{self.moved} kept in the split the run recorded")
        if sum(self.added.values()):
            where = ", ".join(f"{n} to {s}" for s, n in sorted(self.added.items()) if n)
            parts.append(f"{sum(self.added.values())} added since ({where}"
                         + (f"; {self.seen_actor} of a group the run saw went with it"
                            if self.seen_actor else "") + ")")
        if self.missing:
            parts.append(f"{self.missing} of the run's videos are gone")
        if not parts:
            return None
        return "the dataset changed since training: " + "; ".join(parts)


def apply_split_record(ds: Dataset, record: dict) -> Applied:
    """`ds` with each clip in the split the run recorded for it (see the module doc)."""
    by_file = {f: s for s, files in record.get("files", {}).items() for f in files}
    by_group: dict[str, str] = {}
    for s in ("test", "val", "train"):  # a group in several splits: the one seen in training
        for g in record.get("groups", {}).get(s, []):
            by_group[g] = s
    clips, added, seen, moved, present = [], Counter(), 0, 0, set()
    for c in ds.clips:
        rel = _rel(c.path, ds.root)
        split = by_file.get(rel)
        if split is not None:
            present.add(rel)
            moved += split != c.split
        else:
            split = by_group.get(_group(c), c.split)
            added[split] += 1
            seen += _group(c) in by_group and split in ("train", "val")
        clips.append(c if split == c.split else dataclasses.replace(c, split=split))
    out = dataclasses.replace(ds, clips=clips)
    return Applied(out, added, seen, len(set(by_file) - present), moved)


def read_split_record(run: str | os.PathLike) -> dict | None:
    """RUN/split.json, or None for a run from before runs recorded their split."""
    import json

    from vidaction.data.sources import DatasetError

    f = Path(run) / FILE
    try:
        record = json.loads(f.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{f}: unreadable ({e}); it records which videos the run trained "
                           "on, so its test split cannot be checked without it") from None
    if not isinstance(record, dict) or record.get("version") != VERSION:
        raise DatasetError(f"{f}: not a split record of this vidaction (version "
                           f"{record.get('version') if isinstance(record, dict) else '?'})")
    return record


def keep_run_split(ds: Dataset, run: str | os.PathLike, say) -> Dataset:
    """`ds` split as the run at `run` recorded (unchanged for a run with no record); `say`
    gets the one line on what changed since, if anything did."""
    record = read_split_record(run)
    if record is None:
        return ds
    applied = apply_split_record(ds, record)
    note = applied.note()
    if note:
        say(note)
    return applied.dataset
