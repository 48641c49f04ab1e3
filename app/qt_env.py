"""Qt start-up hygiene shared by the app and the GUI tests."""
from __future__ import annotations

import os


def sanitize_qt_environment() -> None:
    """importing cv2 (the contrib wheel) points Qt at OpenCV's own Qt plugins and fonts,
    which breaks PyQt6: forget them before the QApplication is created."""
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        os.environ.pop(var, None)
