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

One writer per run. Every command that writes into a run (train, train --resume, train
--force, evaluate and export with an output inside the run) holds an exclusive OS lock
(flock) on RUN/.vidaction.lock for as long as it writes; the kernel drops it when the
process ends, however it ends. A second writer is refused with one line naming the process
that holds it (pid, command, start time, host when not this one). The lock file stays in
the run; its content is only read while somebody holds it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import shutil
import socket
import sys
import time
from pathlib import Path

from vidaction.errors import UserError
from vidaction.train.run import RunError

try:
    import fcntl
except ImportError:  # Windows: no flock; writers are not kept apart there
    fcntl = None

LOCK = ".vidaction.lock"
RUN_ENTRIES = frozenset({"config.json", "classes.txt", "history.json", "log.csv",
                         "tensorboard", "checkpoints", "model", "eval", LOCK})
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


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """`path` is `folder` or below it (symlinks resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


# ------------------------------------------------------------------------------ the lock


def _command() -> str | None:
    """The vidaction command line this process runs, shortened; None from Python code."""
    argv = list(sys.argv)
    if argv and ("vidaction" in Path(argv[0]).name or argv[0].endswith("cli.py")):
        text = shlex.join(["vidaction", *argv[1:]])
        return text if len(text) <= 120 else text[:117] + "..."
    return None


class RunLock:
    """An exclusive flock on FOLDER/.vidaction.lock, held until `release` (or the process
    ends). `acquire` refuses at once, with one line, when another process holds it."""

    def __init__(self, folder: str | os.PathLike, what: str):
        self.folder, self.what, self.fd = Path(folder), what, None

    @property
    def path(self) -> Path:
        return self.folder / LOCK

    def acquire(self) -> RunLock:
        if fcntl is None or self.fd is not None:
            return self
        for _ in range(20):  # the file may be swapped under us (train --force): retry
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                raise RunError(f"{self.folder}: no such run folder") from None
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):  # read-only run
                    raise RunError(f"{self.path}: cannot be opened to lock the run "
                                   f"({e.strerror})") from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RunError(f"{self.folder} is in use by {holder}; wait for it to end, "
                               "or stop it") from None
            except OSError as e:  # a filesystem without locks (some network mounts)
                os.close(fd)
                print(f"vidaction: warning: {self.path}: cannot be locked ({e.strerror}); "
                      "nothing keeps a second writer out of this run", file=sys.stderr)
                return self
            try:
                same = os.path.samestat(os.stat(self.path), os.fstat(fd))
            except FileNotFoundError:
                same = False
            if not same:  # locked a file that has just been replaced or removed
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                    "command": _command() or self.what, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            with contextlib.suppress(OSError):  # a full disk: the lock itself still holds
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            self.fd = fd
            return self
        raise RunError(f"{self.path}: keeps changing; is another process replacing the run?")

    def release(self, unlink: bool = False) -> None:
        if self.fd is None:
            return
        if unlink:
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        info = {}
    if not isinstance(info, dict) or not info.get("pid"):
        return "another process"
    text = f"process {info['pid']}"
    if info.get("host") and info["host"] != socket.gethostname():
        text += f" on {info['host']}"
    details = [str(info[k]) for k in ("command", "since") if info.get(k)]
    if details:
        text += f" ({', started '.join(details)})"
    return text


@contextlib.contextmanager
def writing_into(run: str | os.PathLike, out: str | os.PathLike, what: str,
                 replaces: bool = True):
    """Hold `run`'s lock while `out` (an output of another command) is written, if `out`
    lies inside the run. An `out` that is the run, or (`replaces`: `out` is replaced as a
    whole) holds it, is refused: the output would take the run's place."""
    run = Path(run)
    if not run.is_dir():
        yield  # the command says "no such run folder" itself
        return
    if inside(run, out) if replaces else Path(out).resolve() == run.resolve():
        raise UserError(f"--out {out} would take the place of the run {run}; choose a "
                        "path beside it or inside it")
    if not inside(out, run):
        yield
        return
    with RunLock(run, what):
        yield


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
