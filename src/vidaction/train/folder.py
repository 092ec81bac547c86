"""Run folders on disk: what counts as one, one writer at a time, and how `train` replaces one.

What is a vidaction run. A folder whose config.json is a JSON object with a "vidaction" key
(the version that wrote it) and a "train" object (older runs: "train" and "sampling"), and
whose every top-level entry is one that `train` or `evaluate` writes (RUN_ENTRIES) or a
temporary of theirs (`.NAME.tmp-PID`, `.NAME.old-PID`, `.STEM.PID.tmpSUFFIX`). Anything
else (a folder holding thesis.txt, a dataset, a run with the user's notes.txt put inside)
is not a run and is never replaced, --force or not; an empty folder is used as it is.

Which runs need --force. One holding work: a saved model, a checkpoint, an epoch in
history.json, or an evaluation. A run that never finished an epoch (a failed or killed
start: config.json and perhaps classes.txt or TensorBoard files, nothing else) holds
nothing to keep, and a new start replaces it without --force.

How --force replaces a run. Everything that can be checked (flags, model limits, the
dataset) is checked before this module is asked; the new run is then trained in a sibling
`.NAME.tmp-PID` and renamed onto NAME when it is complete (the old one set aside as
`.NAME.old-PID` for that moment, then removed). A failed --force run removes its temporary;
a killed one leaves it, and the next start cleans it (`io.writer.clean_stale`, which also
puts a `.NAME.old-PID` back where a kill between the two renames left NAME missing). Until
the rename, NAME is the old run, untouched.
One writer per run: see vidaction.models.runlock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from vidaction.errors import UserError
from vidaction.models.run import RunError
from vidaction.models.runlock import LOCK, RunLock

RUN_ENTRIES = frozenset({"config.json", "classes.txt", "split.json", "history.json",
                         "log.csv", "tensorboard", "checkpoints", "model", "eval", LOCK})
_DIR_TMP = re.compile(r"^\.?(?P<name>.+)\.(tmp|old)-\d+$")
_FILE_TMP = re.compile(r"^\.(?P<stem>.+)\.\d+\.tmp(?P<suffix>.*)$")


def _known_entry(name: str) -> bool:
    if name in RUN_ENTRIES:
        return True
    m = _DIR_TMP.match(name)
    if m and m["name"] in RUN_ENTRIES:
        return True
    m = _FILE_TMP.match(name)
    return bool(m and m["stem"] + m["suffix"] in RUN_ENTRIES)


def run_marker(folder: Path) -> dict | None:
    """folder/config.json if a vidaction `train` wrote it, else None."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("train"), dict):
        return None
    return config if ("vidaction" in config or "sampling" in config) else None


def holds_work(folder: Path) -> bool:
    """A saved model, a checkpoint, a finished epoch or an evaluation: what --force is for."""
    folder = Path(folder)
    if (folder / "model").exists() or (folder / "eval").exists():
        return True
    ckpts = folder / "checkpoints"
    if ckpts.is_dir() and any(p.is_file() for p in ckpts.rglob("*")):
        return True
    if not (folder / "history.json").exists():
        return False
    try:
        return bool(json.loads((folder / "history.json").read_text()).get("epochs"))
    except (OSError, ValueError, AttributeError):
        return True  # unreadable: it may be worth something, so it is not a stub


def folder_state(folder: Path) -> str:
    """"absent", "empty", "stub" (a run with no finished epoch) or "run" (one holding
    work); anything that is not a vidaction run is refused with one line."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return "absent"
    if not folder.is_dir():
        raise RunError(f"{folder}: exists and is not a folder; choose another --out")
    try:
        names = sorted(p.name for p in folder.iterdir() if p.name != LOCK)
    except OSError as e:
        raise RunError(f"{folder}: cannot be read ({e.strerror or e})") from None
    if not names:
        return "empty"
    if run_marker(folder) is None:
        what = "config.json is not one vidaction train wrote" \
            if "config.json" in names else f"it holds {_some(names)}"
        raise RunError(f"{folder} is not a vidaction run ({what}); it is left as it is, "
                       "--force or not: choose another --out, or empty it yourself")
    foreign = [n for n in names if not _known_entry(n)]
    if foreign:
        raise RunError(f"{folder} holds {_some(foreign)}, which are not part of a run; the "
                       "run is left as it is, --force or not: move that out, or choose "
                       "another --out")
    return "run" if holds_work(folder) else "stub"


def _some(names: list[str]) -> str:
    return names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def check_apart(out: str | os.PathLike, data: str | os.PathLike, flag: str = "--out") -> None:
    """A run folder must be neither the dataset, nor inside it, nor hold it: --force would
    delete the data, and a run inside a ROOT/<class>/ dataset would become a class."""
    if not data:
        return
    o, d = Path(out).resolve(), Path(data).resolve()
    if o == d:
        raise UserError(f"{flag} {out} is the --data folder: a run folder must be apart from "
                        "its dataset; choose another one")
    if d in o.parents:
        raise UserError(f"{flag} {out} is inside the --data folder {data}: a run folder must "
                        "be apart from its dataset; choose another one")
    if o in d.parents:
        raise UserError(f"--data {data} is inside {flag} {out}: a run folder must be apart "
                        "from its dataset; choose another one")


def check_start(out: str | os.PathLike, data: str | os.PathLike | None, model: str | None = None,
                resume: bool = False, force: bool = False) -> None:
    """What `train` refuses from its flags and folders alone, checked before TensorFlow is
    imported (8-10 s): an unknown model, a missing dataset folder, nothing to resume, a run
    folder in the way. train() checks all of it again; this only answers sooner."""
    from vidaction.models.factory import model_info  # the names, without TensorFlow

    if model:
        model_info(model)
    if data:
        d = Path(data)
        if not d.exists():
            raise UserError(f"{data}: no such folder")
        if not d.is_dir():
            raise UserError(f"{data}: not a folder")
    if resume:
        if not (Path(out) / "config.json").exists():
            raise RunError(f"{out}: nothing to resume (no config.json)")
        return
    check_apart(out, data or "")
    RunFolder(out, force=force).check()


# ------------------------------------------------------------------------- train's folder


class RunFolder:
    """The folder `train` writes: locked, replaced only when that is safe (module docstring).

    check() before anything is written (read-only refusals); begin() once the start is
    known to be right: it locks and returns the folder to write into (`work`); then
    commit() when the run is complete, or abort() when it failed."""

    def __init__(self, path: str | os.PathLike, force: bool = False, what: str = "train"):
        self.path = Path(path)
        self.work = self.path
        self.force, self.what = force, what
        self.mode = None  # "resume", "new" (into path) or "replace" (into a sibling)
        self._locks: list[RunLock] = []
        self._created = False

    def check(self) -> str:
        from vidaction.io.writer import clean_stale

        clean_stale(self.path)  # a killed --force run's temporary; an interrupted swap
        state = folder_state(self.path)
        if state == "run" and not self.force:
            raise RunError(f"{self.path} already holds a run; --resume continues it, --force "
                           "replaces it")
        return state

    def lock_for_resume(self) -> None:
        """--resume writes into the run itself; nothing to lock where there is no run."""
        self.mode = "resume"
        if (self.path / "config.json").is_file():
            self._lock(self.path)

    def begin(self) -> Path:
        if self.mode == "resume":
            return self.work
        from vidaction.io.writer import make_parent

        if not self.path.exists():
            make_parent(self.path / "config.json")
            self._created = True
        self._lock(self.path)
        state = self.check()  # again, under the lock: what another writer did meanwhile
        if state == "stub":
            print(f"{self.path}: replacing a run that never finished an epoch")
            _clear(self.path)
        if state != "run":
            self.mode = "new"
            return self.work
        self.mode = "replace"
        self.work = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir()
        self._lock(self.work)
        print(f"replacing {self.path}: the new run is trained in {self.work} and takes its "
              f"place when it is complete; until then {self.path} is left as it was")
        return self.work

    def commit(self) -> Path:
        try:
            if self.mode == "replace":
                from vidaction.io.writer import replace_tree

                replace_tree(self.work, self.path)
                self.work = self.path
        finally:
            self._release()
        return self.path

    def abort(self) -> None:
        """A failed or interrupted train: a --force replacement leaves the old run as it
        was; a new run that never finished an epoch leaves nothing (the folder is removed
        if train made it, else emptied); a run with finished epochs stays for --resume."""
        try:
            if self.mode == "replace":
                shutil.rmtree(self.work, ignore_errors=True)
            elif self.mode == "new" and self._locks and not _committed(self.work):
                if self._created:
                    shutil.rmtree(self.work, ignore_errors=True)
                else:
                    _clear(self.work)
                    self._release(unlink=True)
        finally:
            self._release()

    def _lock(self, folder: Path) -> None:
        self._locks.append(RunLock(folder, f"vidaction {self.what}").acquire())

    def _release(self, unlink: bool = False) -> None:
        while self._locks:
            self._locks.pop().release(unlink=unlink)


def _committed(folder: Path) -> bool:
    last = folder / "checkpoints" / "last"
    return last.is_dir() and any(last.iterdir())


def _clear(folder: Path) -> None:
    """Remove a stub's entries (all of them vidaction's: see folder_state); the lock stays."""
    for p in folder.iterdir():
        if p.name == LOCK:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
