"""Render FrameResults without a window (EGL), for the CLI's headless run and for tests.

PyOpenGL must be imported with PYOPENGL_PLATFORM=egl, so create the HeadlessRenderer before
anything else in the process imports OpenGL (this module imports it only on construction);
processes that also show a Qt window should render headless in a subprocess instead.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from engine.render.gl_context import EglContext, Framebuffer, is_software_renderer, use_egl_platform
from engine.render.view import ViewSettings

if TYPE_CHECKING:
    from engine.render.scene import SceneRenderer
    from engine.render.status import FrameResultLike

log = logging.getLogger(__name__)


class HeadlessRenderer:
    """`render(frame_result, view) -> (height, width, 3) uint8 BGR`.

    Owns an EGL context, a (multisampled) framebuffer and a SceneRenderer; use it from one
    thread, and `close()` it (or use `with`).
    """

    def __init__(self, width: int, height: int, samples: int | None = None) -> None:
        """samples: MSAA samples; None = 4 on a GPU, none on a software rasteriser
        (llvmpipe), where 4x costs 3-4x the time (docs/PERFORMANCE.md, render)."""
        use_egl_platform()
        # Imported here, after the platform is chosen: scene imports OpenGL.GL.
        from engine.render.scene import SceneRenderer

        self.width, self.height = int(width), int(height)
        self._context = EglContext()
        try:
            if samples is None:
                samples = 0 if is_software_renderer() else 4
            self.samples = samples
            self._framebuffer = Framebuffer(self.width, self.height, samples)
            self.scene: SceneRenderer = SceneRenderer()
            self.scene.initialize()
        except Exception:
            self._context.close()
            raise

    def render(self, frame_result: "FrameResultLike | None", view: ViewSettings | None = None) -> np.ndarray:
        """Draw `frame_result` as `view` (default: overlay) and read it back:
        (height, width, 3) uint8 BGR, top row first."""
        self._context.make_current()
        self._framebuffer.bind()
        self.scene.render(frame_result, view or ViewSettings(), self.width, self.height)
        return self._framebuffer.read_bgr()

    def close(self) -> None:
        if self._context is None:
            return
        self._context.make_current()
        self.scene.close()
        self._framebuffer.close()
        self._context.close()
        self._context = None

    def __enter__(self) -> "HeadlessRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
