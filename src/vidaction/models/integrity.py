"""Is a TensorFlow checkpoint whole? Shared by training's resume and model loading.

A restore reads lazily (optimizer slots only once training creates them), so damage would
surface mid-epoch as a traceback. Reading every tensor once up front finds a truncated data
file, a garbled index or a flipped bit (the bundle format checksums each tensor) at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def checkpoint_damage(prefix: str | os.PathLike) -> str | None:
    """Why the checkpoint at `prefix` (e.g. DIR/ckpt-3) cannot be read back; None if whole."""
    import tensorflow as tf

    prefix = str(prefix)
    if not Path(prefix + ".index").is_file():
        return "its .index file is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001 - TF raises OpError, ValueError, IndexError...
        return _short(e)
    return None


def numbered_checkpoints(folder: str | os.PathLike) -> list[tuple[int, str]]:
    """(number, prefix) of every `ckpt-N` in `folder`, newest first, whatever the
    `checkpoint` state file says (it may be garbled, or list fewer)."""
    found = []
    for p in Path(folder).glob("ckpt-*.index"):
        m = re.fullmatch(r"ckpt-(\d+)\.index", p.name)
        if m:
            found.append((int(m.group(1)), str(p.with_suffix(""))))
    return sorted(found, reverse=True)


def _short(e: Exception) -> str:
    """The first line of a TensorFlow error, without its op and stack decorations."""
    text = (getattr(e, "message", None) or str(e) or type(e).__name__).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    line = line.split(" [Op:")[0].strip()
    return line[:200]
