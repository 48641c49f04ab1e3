"""The OpenGL viewport: draws the newest FrameResult with engine.render's SceneRenderer, with
mouse orbit/zoom and a HUD painted over it with QPainter.

`Viewport` is the widget the window lays out; it holds a `ViewportWindow` (a QOpenGLWindow)
in a window container. The GL window draws straight into its own surface. A QOpenGLWidget
instead renders into a texture that Qt then composites into the top-level window, which
on software GL (Mesa llvmpipe) costs as much again: a 1280×720 frame in a 1280×800 view
took 26-28 ms of CPU per frame as a QOpenGLWidget and 12 ms as a QOpenGLWindow (measured
2026-12-07, 2 cores, Xvfb), and reached the screen 4-5 ms sooner.

The window keeps only the newest result (older or repeated frame indices are dropped and
counted) and repaints on its own GUI-thread timer at display rate when something changed,
so a fast pipeline never queues paints and a slow one costs nothing while idle.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from app.viewport_support import hud_lines, is_stale
from app.viewport_window import ViewportWindow
from engine.render.status import FrameResultLike
from engine.render.view import ViewSettings

__all__ = ["Viewport", "ViewportWindow", "hud_lines", "is_stale"]


class Viewport(QWidget):
    """The viewport widget: a `ViewportWindow` in a window container, filling the widget.
    Its methods are the window's (see there); mouse input goes to the window itself."""

    frameSwapped = pyqtSignal()  # a frame reached the screen (the window's frameSwapped)

    def __init__(self, parent: QWidget | None = None, view: ViewSettings | None = None,
                 refresh_hz: float | None = None) -> None:
        super().__init__(parent)
        self.gl_window = ViewportWindow(view=view, refresh_hz=refresh_hz)
        container = QWidget.createWindowContainer(self.gl_window, self)
        container.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(container)
        self.setMinimumSize(160, 120)
        self.gl_window.frameSwapped.connect(self.frameSwapped)

    @property
    def view(self) -> ViewSettings:
        return self.gl_window.view

    @property
    def frame_result(self) -> FrameResultLike | None:
        return self.gl_window.frame_result

    @property
    def displayed_index(self) -> int | None:
        return self.gl_window.displayed_index

    @property
    def paint_count(self) -> int:
        return self.gl_window.paint_count

    @property
    def dropped_frames(self) -> int:
        return self.gl_window.dropped_frames

    @property
    def render_fps(self) -> float:
        return self.gl_window.render_fps

    @property
    def paint_ms(self) -> float:
        return self.gl_window.paint_ms

    @property
    def gl_ready(self) -> bool:
        """Whether the GL window has built its renderer (after it was first exposed)."""
        return self.gl_window.gl_ready

    def set_view(self, view: ViewSettings) -> None:
        self.gl_window.set_view(view)

    def set_view_mode(self, mode: str) -> None:
        self.gl_window.set_view_mode(mode)

    def set_mirror(self, mirrored: bool) -> None:
        self.gl_window.set_mirror(mirrored)

    def set_shading(self, shading: str) -> None:
        self.gl_window.set_shading(shading)

    def reset_orbit(self) -> None:
        self.gl_window.reset_orbit()

    def set_frame_result(self, frame_result: FrameResultLike) -> None:
        self.gl_window.set_frame_result(frame_result)

    def clear(self) -> None:
        self.gl_window.clear()

    def set_hud_stats(self, stats: Mapping[str, Any]) -> None:
        self.gl_window.set_hud_stats(stats)

    def grab_image(self, hud: bool = False) -> np.ndarray:
        return self.gl_window.grab_image(hud)

    def render_image(self, width: int, height: int, view: ViewSettings | None = None) -> np.ndarray:
        return self.gl_window.render_image(width, height, view)

    def grabFramebuffer(self) -> QImage:  # noqa: N802 (the Qt name, as QOpenGLWidget had it)
        return self.gl_window.grabFramebuffer()

    def update(self) -> None:
        """Repaint the GL view soon (at once, not at its next refresh tick). The widget itself
        draws nothing (the container covers it), so it is not repainted."""
        self.gl_window.update()
