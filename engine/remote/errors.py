"""The remote back-end's user-facing error (kept apart so catching it imports no Ray)."""


class ServeError(Exception):
    """`holocap serve` cannot start as asked; the message is one line for the user."""
