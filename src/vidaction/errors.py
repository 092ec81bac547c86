"""Errors the user can act on. The CLI prints them as one line, without a traceback."""


class VidactionError(Exception):
    """Base of every error that names a file or setting and what is wrong with it."""


class UserError(VidactionError):
    """A wrong flag or argument combination."""
