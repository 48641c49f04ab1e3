"""What the viewport needs around its GL window: the surface format, the software-GL probe,
the garbage-collector guard for GL work, HUD text and images, and the stale-result rule.
Qt GUI only (no widgets, no GL calls)."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np
from PyQt6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QSurfaceFormat

from engine.render.status import FrameResultLike


def surface_format(samples: int | None = None) -> QSurfaceFormat:
    """OpenGL 3.3 core with depth: what the shaders in shaders/ need. Multisampling (4x)
    only on a GPU: software GL (Mesa llvmpipe) pays 3-4x per frame for it, on the GUI
    thread."""
    fmt = QSurfaceFormat()
    fmt.setRenderableType(QSurfaceFormat.RenderableType.OpenGL)
    fmt.setVersion(3, 3)
    fmt.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
    fmt.setDepthBufferSize(24)
    fmt.setSamples((0 if is_software_gl() else 4) if samples is None else samples)
    return fmt


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off Python's cyclic garbage collector during GL work. A collection can free
    another, unreferenced GL widget (a closed window caught in a reference cycle), and Qt's
    QOpenGLWidget destructor makes its own context current and then releases it: the GL
    calls after it would run with no context at all (seen as a shader "quad" that does not
    link, with an empty log, in test runs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def is_software_gl() -> bool:
    """True when Qt's default OpenGL context is a software rasteriser (llvmpipe,
    softpipe, swrast), probed once with a throw-away offscreen context."""
    from PyQt6.QtGui import QOffscreenSurface, QOpenGLContext

    context = QOpenGLContext()
    if not context.create():
        return True
    surface = QOffscreenSurface()
    surface.create()
    try:
        if not context.makeCurrent(surface):
            return True
        from OpenGL import GL

        renderer = GL.glGetString(GL.GL_RENDERER) or b""
        context.doneCurrent()
    finally:
        surface.destroy()
    name = renderer.decode(errors="replace").lower()
    return any(word in name for word in ("llvmpipe", "softpipe", "swrast", "software"))


def hud_lines(stats: Mapping[str, Any]) -> list[str]:
    """'label: value' lines for the HUD; floats get one decimal, None shows as '-'."""
    lines = []
    for key, value in stats.items():
        if value is None:
            text = "-"
        elif isinstance(value, float):
            text = f"{value:.1f}"
        else:
            text = str(value)
        lines.append(f"{key}: {text}")
    return lines


def is_stale(new: FrameResultLike, held: FrameResultLike) -> bool:
    """True when `new` is not newer than `held`: same source, index and capture time not later."""
    return (new.frame.source_id == held.frame.source_id and new.frame.index <= held.frame.index
            and new.frame.t_capture <= held.frame.t_capture)


def qimage_to_bgr(image: QImage) -> np.ndarray:
    """(H, W, 3) uint8 BGR copy of a QImage."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits().asstring(stride * h), np.uint8).reshape(h, stride)
    return np.ascontiguousarray(data[:, : w * 3].reshape(h, w, 3)[:, :, ::-1])


def render_hud_image(stats: Mapping[str, Any]) -> QImage:
    """The HUD box (translucent black, light monospace text) as a premultiplied ARGB image."""
    lines = hud_lines(stats)
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(9.0)
    metrics = QFontMetrics(font)
    line_h = metrics.height()
    width = max(metrics.horizontalAdvance(line) for line in lines) + 16
    image = QImage(width, line_h * len(lines) + 10, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QColor(0, 0, 0, 150))
    painter = QPainter(image)
    try:
        painter.setFont(font)
        painter.setPen(QColor(230, 235, 240))
        for i, line in enumerate(lines):
            painter.drawText(8, 5 + metrics.ascent() + i * line_h, line)
    finally:
        painter.end()
    return image
