"""On-disk cache of decoded, resized clips, so epoch 2+ reads arrays instead of decoding.

A key covers everything that changes the pixels: the file (resolved path, mtime, size),
the sampling parameters and which clip of the file. A changed file gets a new key; stale
entries are never served.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from vidaction.data.sampling import SamplingConfig


def file_identity(path: str | os.PathLike) -> tuple:
    """What makes two reads of a file the same: absolute path, mtime, size."""
    st = os.stat(path)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _cfg_text(cfg: SamplingConfig) -> str:
    return json.dumps(cfg.as_dict(), sort_keys=True)


def clip_key(identity: tuple, cfg: SamplingConfig, slot: str) -> str:
    """Hex key of one clip; computed on every read, so kept to a stat and a hash."""
    blob = "\x00".join([*(str(v) for v in identity), _cfg_text(cfg), slot])
    return hashlib.sha1(blob.encode()).hexdigest()


class ClipCache:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The clip and its mask, or None. A damaged entry counts as a miss."""
        try:
            with open(self._file(key), "rb") as fh:
                clip = np.lib.format.read_array(fh, allow_pickle=False)
                mask = np.frombuffer(fh.read(), np.uint8).astype(bool)
        except (FileNotFoundError, OSError, ValueError):
            self.misses += 1
            return None
        if clip.ndim != 4 or len(mask) != clip.shape[0]:
            self.misses += 1
            return None
        self.hits += 1
        return clip, mask

    def put(self, key: str, clip: np.ndarray, mask: np.ndarray) -> None:
        # A plain .npy with the mask bytes after it: np.savez would CRC-check every read,
        # which cost more than the read itself.
        f = self._file(key)
        f.parent.mkdir(exist_ok=True)
        tmp = f.with_name(f".{f.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(clip), allow_pickle=False)
                fh.write(np.asarray(mask, np.uint8).tobytes())
            os.replace(tmp, f)
        finally:
            if tmp.exists():
                tmp.unlink()
