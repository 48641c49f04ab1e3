"""Logging set-up: console at the chosen level, and a rotating log file in the user log dir.

The log file is private (0600): it holds paths, device names and stream addresses. Secrets
never reach it: a filter replaces `token=...` in every message with `token=<hidden>`.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import re
from pathlib import Path

from engine.paths import log_dir

LOG_FILE = "holocap.log"
_TOKEN = re.compile(r"(token=)[^&\s'\"<>]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the value of every token=... replaced by <hidden>."""
    return _TOKEN.sub(r"\1<hidden>", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message so that no token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created (and kept) readable by the user only."""

    def _open(self):  # type: ignore[override]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.baseFilename, 0o600)  # a file made by an older version may be 0644
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(level: str = "INFO", console: bool = True) -> Path:
    """Configure the root logger once; returns the log file path."""
    path = log_dir() / LOG_FILE
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = PrivateRotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
    file_handler.addFilter(RedactSecrets())
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler()
        stream.setLevel(getattr(logging, level.upper(), logging.INFO))
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.addFilter(RedactSecrets())
        root.addHandler(stream)
    # Chatty third-party loggers stay in the file only.
    for noisy in ("matplotlib", "numba", "PIL", "urllib3", "jax", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
