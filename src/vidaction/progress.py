"""Progress on stderr, one helper for every stage.

On a terminal: tqdm bars. Anywhere else (a log file, CI, a pipe) a bar's carriage-return
frames are noise, so, as Keras (verbose=2) and Hugging Face do, no bars: one line when a
step finishes ("evaluating test: 40/40 videos in 12.3 s"), and for long steps a line at
most every `LINE_EVERY_S` seconds. `vidaction --progress` forces bars on (`force_bars`).
Messages printed while a bar is drawn go through `write` (tqdm.write), which lifts the
bar first; `warning_hook` routes Python warnings the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

LINE_EVERY_S = 30.0  # a long step still shows signs of life in a log, without flooding it

_forced: bool | None = None  # None: bars only on a terminal; True: always bars


def force_bars(on: bool | None = True) -> None:
    """`--progress`: draw bars even when stderr is not a terminal (None: back to auto)."""
    global _forced
    _forced = on


def bars_wanted(stream=None) -> bool:
    """Bars when forced, or when `stream` (default stderr) is a terminal."""
    if _forced is not None:
        return _forced
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        return False


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
        unit: str = "it", enabled: bool = True, leave: bool = False, summary: bool = True,
        unit_scale: bool = False, file=None, **kw: Any):
    """A tqdm bar on a terminal, else a `LineProgress`; `enabled=False` (--no-progress):
    neither. `summary=False`: in line mode, no closing line (the caller prints its own,
    e.g. the epoch line of training)."""
    from tqdm import tqdm

    file = file if file is not None else sys.stderr
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and bars_wanted(file):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave,
                    unit_scale=unit_scale, file=file, dynamic_ncols=True, **kw)
    return LineProgress(iterable, total=total, desc=desc, unit=unit,
                        enabled=enabled and summary, unit_scale=unit_scale, file=file)


def write(msg: str, file=None) -> None:
    """Print a line above any bar being drawn (tqdm.write), never glued onto it."""
    from tqdm import tqdm

    tqdm.write(msg, file=file if file is not None else sys.stderr)
    (file or sys.stderr).flush()


def warning_hook(message, category=None, filename=None, lineno=None, file=None,
                 line=None) -> None:
    """For warnings.showwarning: 'vidaction: warning: ...', as one line above any bar."""
    write(f"vidaction: warning: {message}")


def plural(n: float, word: str) -> str:
    """`word` as it reads after the number `n`: clip, clips; batch, batches. Here, at the
    root, so that every layer (data/ included) can say "1 video" rather than "1 videos"."""
    if n == 1 or not word:
        return word
    return word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s")


def counted(n: float, word: str) -> str:
    """'1 video', '3 videos', '1234567 frames' (never '1.23457e+06')."""
    num = str(int(n)) if float(n).is_integer() else f"{n:g}"
    return f"{num} {plural(n, word)}"


def _amount(n: float, unit: str, scale: bool) -> str:
    if scale and unit == "B":
        for size, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if n >= size:
                return f"{n / size:.1f} {name}"
        return f"{n:.0f} B"
    return f"{n:g}"


class LineProgress:
    """What a bar becomes off a terminal: the same calls as tqdm, one line per finished
    step instead of redrawn frames."""

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None,
                 desc: str = "", unit: str = "it", enabled: bool = True,
                 unit_scale: bool = False, file=None):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.enabled, self.scale, self.file = enabled, unit_scale, file
        self.n = 0
        self.postfix = ""
        self.disable = not enabled
        self.start = self.last = time.monotonic()
        self.closed = False

    def __iter__(self) -> Iterator:
        for x in self.iterable or ():
            yield x
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _line(self) -> str:
        done = _amount(self.n, self.unit, self.scale)
        of = f"/{_amount(self.total, self.unit, self.scale)}" if self.total else ""
        # tqdm's default unit "it" is a bar's, not a word: "24/24 in 0.3 s", never "its"
        bare = (self.scale and self.unit == "B") or self.unit in ("", "it")
        unit = "" if bare else f" {plural(self.total or self.n, self.unit)}"  # 1/3 files
        head = f"{self.desc}: " if self.desc else ""
        tail = f", {self.postfix}" if self.postfix else ""
        return f"{head}{done}{of}{unit} in {time.monotonic() - self.start:.1f} s{tail}"

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.enabled and now - self.last >= LINE_EVERY_S and not (
                self.total and self.n >= self.total):
            self.last = now
            write(self._line(), self.file)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kw: Any) -> None:
        items = dict(ordered_dict or {}, **kw)
        self.postfix = ", ".join(f"{k} {v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def clear(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def write(self, s: str, file=None, **kw: Any) -> None:
        write(s, file if file is not None else self.file)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.enabled and (self.n or self.total):
            write(self._line(), self.file)
