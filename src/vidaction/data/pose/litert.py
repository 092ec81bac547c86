"""A LiteRT interpreter for a pose model, opened quietly, once per thread."""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from vidaction.errors import VidactionError


class PoseModelError(VidactionError):
    """Pose model weights that cannot be found, fetched, verified or opened."""


@contextmanager
def _quiet_native_stderr():
    """LiteRT's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate" for every
    interpreter; keep it off the CLI's stderr (errors still arrive as exceptions)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (captured, closed): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def default_threads() -> int:
    return min(4, os.cpu_count() or 1)


def open_interpreter(path: Path, threads: int | None = None):
    """(interpreter, input details, output details); one line naming the file if it is not
    a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with _quiet_native_stderr():
            it = Interpreter(model_path=str(path), num_threads=threads or default_threads())
            it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PoseModelError(f"{path}: not a TFLite model ({first})") from None
    return it, it.get_input_details(), it.get_output_details()


_local = threading.local()


def shared_interpreter(path: Path, threads: int | None = None):
    """One interpreter per (file, threads) and thread: opening one costs more than a frame,
    and an interpreter must not be used from two threads at once."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, threads)
    if key not in cache:
        cache[key] = open_interpreter(path, threads)
    return cache[key]
