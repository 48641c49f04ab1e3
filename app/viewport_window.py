"""The viewport's GL window: draws the newest FrameResult with engine.render's SceneRenderer
into its own surface, with mouse orbit/zoom and a HUD painted over it with QPainter (see
app.viewport for why a QOpenGLWindow and not a QOpenGLWidget)."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator, Mapping

import numpy as np
from OpenGL import GL
from PyQt6 import sip
from PyQt6.QtCore import QPointF, Qt, QTimer
from PyQt6.QtGui import QImage, QMouseEvent, QOpenGLContext, QPainter, QWheelEvent
from PyQt6.QtOpenGL import QOpenGLWindow

from app.viewport_support import (collector_paused, is_stale, qimage_to_bgr, render_hud_image,
                                  surface_format)
from engine.render.gl_context import Framebuffer
from engine.render.scene import SceneRenderer
from engine.render.status import FrameResultLike
from engine.render.view import SHADINGS, VIEW_MODES, OrbitCamera, ViewSettings

log = logging.getLogger(__name__)

ORBIT_DEG_PER_PX = 0.4
ZOOM_PER_WHEEL_STEP = 1.1
FPS_WINDOW = 30  # paints averaged for render_fps


class ViewportWindow(QOpenGLWindow):
    """The GL window inside `Viewport`. Shows FrameResults. `set_frame_result()` may be called from any thread (it only
    stores the result; the GUI-thread timer repaints); everything else is GUI-thread only.

    Mouse: left-drag orbits the mesh view (or turns the volume view), wheel zooms,
    double-click resets. `grab_image()` returns the clean view (no HUD) as BGR.
    """

    def __init__(self, view: ViewSettings | None = None, refresh_hz: float | None = None) -> None:
        super().__init__()
        self.setFormat(surface_format())
        # Keyboard focus stays with the widgets: the main window's shortcuts (F1, R, Ctrl+S)
        # would not see keys typed into an embedded window.
        self.setFlag(Qt.WindowType.WindowDoesNotAcceptFocus, True)
        self._view = view or ViewSettings()
        self._scene = SceneRenderer()
        self._lock = threading.Lock()
        self._pending: FrameResultLike | None = None
        self._shown: FrameResultLike | None = None
        self._dirty = True
        self._dropped = 0
        self._hud: dict[str, Any] = {}
        self._hud_image: QImage | None = None
        self._show_hud = True
        self._paint_times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._paint_ms: deque[float] = deque(maxlen=FPS_WINDOW)  # GUI-thread cost of each paint
        self._paint_count = 0
        self._drag_from: QPointF | None = None
        self._gl_ready = False
        self._offscreen: Framebuffer | None = None  # for render_image()

        screen = self.screen()
        rate = refresh_hz or (screen.refreshRate() if screen is not None else 0.0) or 60.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_tick)
        self._timer.start(max(1, int(round(1000.0 / rate))))

    # -- public API ----------------------------------------------------------------------

    @property
    def view(self) -> ViewSettings:
        return self._view

    def set_view(self, view: ViewSettings) -> None:
        self._view = view
        self._mark_dirty()

    def set_view_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown view mode {mode!r}; expected one of {VIEW_MODES}")
        self.set_view(replace(self._view, mode=mode))

    def set_mirror(self, mirrored: bool) -> None:
        """Show the views left-right mirrored (selfie view)."""
        self.set_view(replace(self._view, mirror=bool(mirrored)))

    def set_shading(self, shading: str) -> None:
        """The mesh view's shading: "textured" (the person's colours), "phong" or "matcap"."""
        if shading not in SHADINGS:
            raise ValueError(f"unknown shading {shading!r}; expected one of {SHADINGS}")
        self.set_view(replace(self._view, shading=shading))

    def reset_orbit(self) -> None:
        self.set_view(replace(self._view, orbit=OrbitCamera(), volume_yaw_deg=0.0))

    def set_frame_result(self, frame_result: FrameResultLike) -> None:
        """Keep `frame_result` if it is newer than the one held; stale ones (same source, an
        index and capture time not later) and ones replaced before they were drawn count as
        dropped. A restarted source (index back to 0, later capture time) is accepted."""
        with self._lock:
            current = self._pending if self._pending is not None else self._shown
            if current is not None and is_stale(frame_result, current):
                self._dropped += 1
                return
            if self._pending is not None:
                self._dropped += 1
            self._pending = frame_result
            self._dirty = True

    @property
    def frame_result(self) -> FrameResultLike | None:
        """The newest result held (drawn or about to be)."""
        with self._lock:
            return self._pending if self._pending is not None else self._shown

    def clear(self) -> None:
        """Forget the held result (source changed): the view shows "waiting for frames"."""
        with self._lock:
            self._pending = self._shown = None
        self._mark_dirty()

    @property
    def displayed_index(self) -> int | None:
        """Frame index of the result drawn by the last paint (None before any)."""
        with self._lock:
            return None if self._shown is None else self._shown.frame.index

    @property
    def gl_ready(self) -> bool:
        return self._gl_ready

    @property
    def paint_count(self) -> int:
        """Paints so far (grabs included)."""
        return self._paint_count

    @property
    def dropped_frames(self) -> int:
        """Results received but never drawn (stale or replaced before the next paint)."""
        return self._dropped

    @property
    def render_fps(self) -> float:
        """Paints per second over the last FPS_WINDOW paints (0 before two paints or when
        the last paint is over a second old)."""
        times = self._paint_times
        if len(times) < 2 or time.monotonic() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    @property
    def paint_ms(self) -> float:
        """Median GUI-thread milliseconds of the last FPS_WINDOW paints (0 before any)."""
        return float(np.median(self._paint_ms)) if self._paint_ms else 0.0

    def set_hud_stats(self, stats: Mapping[str, Any]) -> None:
        """Lines for the HUD, e.g. {"capture fps": 30.0, "face ms": 4.2, "dropped": 3};
        an empty mapping hides it."""
        self._hud = dict(stats)
        self._hud_image = render_hud_image(self._hud) if self._hud else None
        self._mark_dirty()

    def grab_image(self, hud: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 BGR of the view at the widget's size in device pixels; without
        the HUD unless `hud`."""
        if not hud:
            ratio = self.devicePixelRatio()
            return self.render_image(int(round(self.width() * ratio)), int(round(self.height() * ratio)))
        shown = self._show_hud
        self._show_hud = True
        try:
            image = self.grabFramebuffer()
        finally:
            self._show_hud = shown
        return qimage_to_bgr(image)

    def render_image(self, width: int, height: int, view: ViewSettings | None = None) -> np.ndarray:
        """The newest result drawn off-screen at `width` x `height` (clean, no HUD), e.g. for
        a virtual camera of a fixed size: (height, width, 3) uint8 BGR. Uses the widget's
        GL context and an FBO kept for the size; needs the widget to have been shown once."""
        if not self._gl_ready:
            raise RuntimeError("the viewport has no GL context yet (show it first)")
        with collector_paused():
            return self._render_offscreen(width, height, view)

    def _render_offscreen(self, width: int, height: int, view: ViewSettings | None) -> np.ndarray:
        self.makeCurrent()
        try:
            if self._offscreen is None or (self._offscreen.width, self._offscreen.height) != (width, height):
                if self._offscreen is not None:
                    self._offscreen.close()
                self._offscreen = Framebuffer(width, height, samples=4)
            self._offscreen.bind()
            self._scene.render(self.frame_result, view or self._view, width, height)
            return self._offscreen.read_bgr()
        finally:
            self.doneCurrent()

    # -- GL ------------------------------------------------------------------------------

    @contextmanager
    def _in_own_context(self) -> Iterator[None]:
        """Qt made this window's context current before calling initializeGL/paintGL, but a
        collection that ran since then may have released it (see `collector_paused`): make it
        current again, then keep the collector off for the GL work."""
        with collector_paused():
            context = self.context()
            current = QOpenGLContext.currentContext()
            if context is not None and (current is None or sip.unwrapinstance(current) != sip.unwrapinstance(context)):
                log.debug("GL context was released before %s drew; made current again", type(self).__name__)
                context.makeCurrent(context.surface())
            yield

    def initializeGL(self) -> None:  # noqa: N802 (Qt API)
        with self._in_own_context():
            self._scene.initialize()
        self._gl_ready = True
        context = self.context()
        if context is not None:
            context.aboutToBeDestroyed.connect(self._release_gl)

    def paintGL(self) -> None:  # noqa: N802 (Qt API)
        t0 = time.perf_counter()
        with self._lock:
            if self._pending is not None:
                self._shown, self._pending = self._pending, None
            frame_result = self._shown
            self._dirty = False
        ratio = self.devicePixelRatio()
        width, height = int(round(self.width() * ratio)), int(round(self.height() * ratio))
        painter = QPainter(self)
        try:
            painter.beginNativePainting()
            with self._in_own_context():
                # render_image() may have left its own framebuffer bound in this context.
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.defaultFramebufferObject())
                self._scene.render(frame_result, self._view, width, height)
            painter.endNativePainting()
            if self._show_hud and self._hud:
                self._paint_hud(painter)
        finally:
            painter.end()
        self._paint_times.append(time.monotonic())
        self._paint_ms.append((time.perf_counter() - t0) * 1000.0)
        self._paint_count += 1

    def _paint_hud(self, painter: QPainter) -> None:
        # Text is rasterised once per HUD update (set_hud_stats), not once per paint:
        # drawText over GL content costs milliseconds per line on software GL.
        if self._hud_image is not None:
            painter.drawImage(8, 8, self._hud_image)

    def _release_gl(self) -> None:
        if not self._gl_ready:
            return
        with collector_paused():
            self.makeCurrent()
            try:
                if self._offscreen is not None:
                    self._offscreen.close()
                    self._offscreen = None
                self._scene.close()
            finally:
                self.doneCurrent()
                self._gl_ready = False

    # -- timing and input ----------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _on_tick(self) -> None:
        if self._dirty and self.isExposed():
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self._drag_from is None:
            return
        delta = event.position() - self._drag_from
        self._drag_from = event.position()
        # Dragging right turns the model right: the eye moves left (negative yaw), or right
        # when the view is mirrored.
        d_yaw = (1.0 if self._view.mirror else -1.0) * delta.x() * ORBIT_DEG_PER_PX
        d_pitch = delta.y() * ORBIT_DEG_PER_PX
        if self._view.mode == "volume":
            yaw = (self._view.volume_yaw_deg + d_yaw + 180.0) % 360.0 - 180.0
            self.set_view(replace(self._view, volume_yaw_deg=yaw))
        else:
            self.set_view(replace(self._view, orbit=self._view.orbit.orbited(d_yaw, d_pitch)))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        self.reset_orbit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_view(replace(self._view, orbit=self._view.orbit.zoomed(ZOOM_PER_WHEEL_STEP ** steps)))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._timer.stop()
        super().closeEvent(event)
