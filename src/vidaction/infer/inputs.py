"""What `predict` and `pose` share: the inputs a user names, one output each, one line each.

Files, folders and globs expand to a list of inputs; each is worked on in turn, and a bad
one gets one error line (and a JSON error record with --json) while the rest go on.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from vidaction.errors import UserError, VidactionError
from vidaction.io import VIDEO_EXTENSIONS
from vidaction.io.writer import WriteError


@dataclass
class Input:
    """One file to predict, or an input that expanded to nothing (`error` says why)."""

    path: Path
    error: str = ""


def _is_video_name(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")


def expand_inputs(inputs: Sequence[str]) -> list[Input]:
    """Files, folders (searched recursively for video extensions) and globs (expanded here,
    so quoted patterns work too). A named file is always kept, whatever its extension: the
    reader says what is wrong with it. Repeats are dropped."""
    out: list[Input] = []
    seen: set[str] = set()

    def add(p: Path) -> None:
        key = os.path.normpath(str(p))
        if key not in seen:
            seen.add(key)
            out.append(Input(p))

    def add_folder(d: Path) -> int:
        found = sorted(p for p in d.rglob("*") if p.is_file() and _is_video_name(p))
        for p in found:
            add(p)
        return len(found)

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            if not add_folder(p):
                out.append(Input(p, f"{p}: no videos in this folder (looked for "
                                    f"{', '.join(VIDEO_EXTENSIONS)})"))
        elif not p.exists() and not p.is_symlink() and not glob.has_magic(raw):
            # known now, so that a command given only missing files stops before the
            # model loads (a broken link is left to the reader, which says where it points)
            out.append(Input(p, f"{p}: missing: no such file"))
        elif p.exists() or not glob.has_magic(raw):
            add(p)  # reported by the reader, in order
        else:
            n = 0
            for m in sorted(glob.glob(raw, recursive=True)):
                mp = Path(m)
                if mp.is_dir():
                    n += add_folder(mp)
                elif _is_video_name(mp):
                    add(mp)
                    n += 1
            if not n:
                out.append(Input(p, f"{raw}: no video matches this pattern"))
    return out


def per_input(template: Path, src: Path, many: bool, taken: set[str]) -> Path:
    """One output per input: TEMPLATE itself for one input, TEMPLATE_<stem> for several."""
    if not many:
        return template
    base = f"{template.stem}_{src.stem}" if template.suffix else f"{template.name}_{src.stem}"
    out = template.with_name(base + template.suffix)
    k = 2
    while str(out) in taken:
        out = template.with_name(f"{base}_{k}{template.suffix}")
        k += 1
    taken.add(str(out))
    return out


def inputs_and_overlay(inputs: Sequence[str], overlay: str | None
                       ) -> tuple[list[Input], list[Input], bool]:
    """(every input, the files among them, whether there are several), with the --overlay
    name checked before any model loads: a known suffix, and a file name, not a folder, for
    one input (several inputs write OUT_<name>.mp4 each)."""
    if overlay:
        from vidaction.infer.overlay import OverlayWriter

        OverlayWriter(overlay, 25)  # refuses a bad suffix
    items = expand_inputs(inputs)
    if not items:
        raise UserError("no inputs given")
    files = [it for it in items if not it.error]
    many = len(files) > 1
    if overlay and not many and Path(overlay).is_dir():
        raise UserError(f"{overlay}: is a folder; --overlay takes a file name "
                        "(OUT.mp4 or OUT.gif)")
    return items, files, many


def each_input(items: Sequence[Input], work: Callable[[Input], tuple[dict, list[str]]],
               bar, as_json: bool, stdout: TextIO, stderr: TextIO,
               fatal: Callable[[Exception], bool] = lambda e: False) -> int:
    """Run `work(input) -> (record, text lines)` on every input, printing each result (or
    its one error line) above the bar; returns 1 if any input failed. An error for which
    `fatal` is true is not the input's fault: it is raised, once, instead."""
    failed = 0
    for it in items:
        try:
            if it.error:
                raise UserError(it.error)
            record, text = work(it)
        except (VidactionError, OSError) as e:
            if fatal(e):
                bar.close()
                raise
            failed += 1
            # an output that cannot be written names itself, not the input it was for
            msg = str(e) if isinstance(e, WriteError) or str(it.path) in str(e) \
                else f"{it.path}: {e}"
            bar.clear()
            print(f"vidaction: error: {msg}", file=stderr, flush=True)
            if as_json:
                print(json.dumps({"path": str(it.path), "error": msg}), file=stdout, flush=True)
            bar.set_postfix_str(f"{failed} failed", refresh=False)  # "5/5 videos, 3 failed"
        else:
            bar.clear()
            print(json.dumps(record) if as_json else "\n".join(text), file=stdout, flush=True)
        bar.update(1)
    bar.close()
    return 1 if failed else 0
