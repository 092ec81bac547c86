"""Names typed on the command line (models, classes): matched without regard to case, and
an unknown one answered with the nearest names (difflib), as git and pip do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from vidaction.errors import UserError


def resolve_name(name: str, known: Iterable[str], what: str = "model") -> str:
    """The known spelling of `name` (any case); UserError "unknown model 'x'; did you mean
    movinet-a0-stream? known: ..." when none matches."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    got = by_lower.get(name.strip().lower())
    if got is not None:
        return got
    close = difflib.get_close_matches(name.strip().lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f"; did you mean {by_lower[close[0]]}?" if close else ";"
    raise UserError(f"unknown {what} {name!r}{hint} known: {', '.join(known)}")
