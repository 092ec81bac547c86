"""One writer per run folder, and where another command's output may go.

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
import shlex
import socket
import sys
import time
from pathlib import Path

from vidaction.errors import UserError
from vidaction.models.run import RunError

try:
    import fcntl
except ImportError:  # Windows: no flock; writers are not kept apart there
    fcntl = None

LOCK = ".vidaction.lock"


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """`path` is `folder` or below it (symlinks resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


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
