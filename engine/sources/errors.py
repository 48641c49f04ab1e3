"""The one error a source raises: a one-line message meant for the user."""
from __future__ import annotations


class SourceError(Exception):
    """A source could not be opened or used.

    `str(error)` is a single line that names the input and says what is wrong, so the CLI
    can print it and exit non-zero and the GUI can show it in a dialog as-is.
    """

    def __init__(self, message: str) -> None:
        # Keep it to one line even when a library message carried newlines.
        super().__init__(" ".join(str(message).split()))
