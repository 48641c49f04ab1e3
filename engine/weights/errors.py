"""The one error the model manager raises: a one-line message meant for the user."""
from __future__ import annotations


class WeightsError(Exception):
    """A manifest, download, import or verification problem; `str(error)` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
