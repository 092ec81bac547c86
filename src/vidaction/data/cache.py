"""On-disk cache of decoded, resized clips, so epoch 2+ reads arrays instead of decoding.

A key covers everything that changes the pixels: the file (resolved path, mtime, size),
the sampling parameters and which clip of the file. A changed file gets a new key; stale
entries are never served.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vidaction.data.sampling import SamplingConfig


def clip_key(path: str | os.PathLike, cfg: SamplingConfig, slot: str) -> str:
    p = Path(path)
    st = p.stat()
    blob = json.dumps([str(p.resolve()), st.st_mtime_ns, st.st_size, cfg.as_dict(), slot],
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


class ClipCache:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _file(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        f = self._file(key)
        try:
            with np.load(f) as z:
                out = z["clip"], z["mask"]
        except (FileNotFoundError, OSError, ValueError, KeyError):
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, key: str, clip: np.ndarray, mask: np.ndarray) -> None:
        f = self._file(key)
        f.parent.mkdir(exist_ok=True)
        tmp = f.with_name(f".{f.stem}.{os.getpid()}.{id(clip)}.tmp.npz")
        try:
            np.savez(tmp, clip=clip, mask=mask)  # uncompressed: loading is the hot path
            os.replace(tmp, f)
        finally:
            if tmp.exists():
                tmp.unlink()
