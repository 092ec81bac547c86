"""A LiteRT interpreter for a pose model, opened quietly, once per thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from vidaction.errors import VidactionError
from vidaction.tflogs import quiet_native_stderr


class PoseModelError(VidactionError):
    """Pose model weights that cannot be found, fetched, verified or opened."""


def default_threads() -> int:
    return min(4, os.cpu_count() or 1)


def open_interpreter(path: Path, threads: int | None = None):
    """(interpreter, input details, output details); one line naming the file if it is not
    a TFLite model."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_native_stderr():
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
