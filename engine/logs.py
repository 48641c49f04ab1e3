"""Logging set-up: console at the chosen level, and a rotating log file in the user log dir."""
from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from engine.paths import log_dir

LOG_FILE = "holocap.log"


def setup_logging(level: str = "INFO", console: bool = True) -> Path:
    """Configure the root logger once; returns the log file path."""
    path = log_dir() / LOG_FILE
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler()
        stream.setLevel(getattr(logging, level.upper(), logging.INFO))
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    # Chatty third-party loggers stay in the file only.
    for noisy in ("matplotlib", "numba", "PIL", "urllib3", "jax", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
