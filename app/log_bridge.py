"""Engine warnings to the window: a logging handler that re-emits records as a Qt signal.

The engine says things once through `logging` ("3DDFA_V2 weights not installed: using the
offline default"); this bridge lets the window show them without the engine knowing Qt.
"""
from __future__ import annotations

import logging

from PyQt6.QtCore import QObject, pyqtSignal


class LogBridge(QObject):
    """Emits `warning(str)` (queued to the GUI thread) for WARNING+ records of `logger`."""

    warning = pyqtSignal(str)

    def __init__(self, logger_name: str = "engine", level: int = logging.WARNING,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._logger = logging.getLogger(logger_name)
        self._handler = _SignalHandler(self)
        self._handler.setLevel(level)
        self._logger.addHandler(self._handler)

    def detach(self) -> None:
        self._logger.removeHandler(self._handler)


class _SignalHandler(logging.Handler):
    def __init__(self, bridge: LogBridge) -> None:
        super().__init__()
        self._bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._bridge.warning.emit(record.getMessage())
        except RuntimeError:  # the window (and its bridge) is already gone
            self._bridge = None
            logging.getLogger(__name__).debug("log bridge detached: window closed")
