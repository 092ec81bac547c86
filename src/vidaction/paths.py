"""Where vidaction keeps what it can compute again: below every stage, so each may use it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$VIDACTION_CACHE, else $XDG_CACHE_HOME/vidaction (~/.cache/vidaction): clips/,
    features/, index/ and weights/ live below it."""
    base = os.environ.get("VIDACTION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vidaction")
    return Path(base)
