"""Names typed on the command line (models, classes, verbs, flags): matched without regard
to case, and an unknown one answered with the nearest names (difflib), as git and pip do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from vidaction.errors import UserError


def closest(name: str, known: Iterable[str], cutoff: float = 0.6) -> list[str]:
    """The known names nearest to `name` (any case), in their known spelling: every one
    as near as the nearest (a tie is not ours to break), none when nothing is close."""
    by_lower = {str(k).lower(): str(k) for k in known}
    typed = name.strip().lower()
    if typed in by_lower:
        return [by_lower[typed]]
    close = difflib.get_close_matches(typed, list(by_lower), n=3, cutoff=cutoff)
    if not close:
        return []

    def score(k: str) -> float:
        return difflib.SequenceMatcher(None, typed, k).ratio()

    best = score(close[0])
    return [by_lower[k] for k in close if score(k) >= best - 1e-9]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" (did you mean x?)" (or "x or y"), for the end of an error line; "" when no known
    name is close."""
    near = closest(name, known)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def resolve_name(name: str, known: Iterable[str], what: str = "model") -> str:
    """The known spelling of `name` (any case); UserError "unknown model 'x'; did you mean
    movinet-a0-stream? known: ..." when none matches."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    got = by_lower.get(name.strip().lower())
    if got is not None:
        return got
    close = closest(name, known)
    hint = f"; did you mean {close[0]}?" if close else ";"
    raise UserError(f"unknown {what} {name!r}{hint} known: {', '.join(known)}")
