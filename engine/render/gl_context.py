"""Headless OpenGL: an EGL context without a window, and a framebuffer object to draw into.

PyOpenGL picks its platform (GLX, EGL, ...) once, when `OpenGL` is first imported, from the
PYOPENGL_PLATFORM environment variable. `use_egl_platform()` must therefore run before any
module of this package that imports OpenGL; `HeadlessRenderer` does that for its callers.
The Qt viewport does not use this module: Qt creates and owns its own context.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# EGL constants for the platform extensions (EGL_EXT_platform_base); not all are exported
# by PyOpenGL 3.1.
_EGL_PLATFORM_SURFACELESS_MESA = 0x31DD
_EGL_PLATFORM_DEVICE_EXT = 0x313F


class HeadlessGLError(RuntimeError):
    """No headless OpenGL 3.3 core context could be created."""


def use_egl_platform() -> None:
    """Make PyOpenGL use EGL. Raises HeadlessGLError when OpenGL was already imported with
    another platform (set PYOPENGL_PLATFORM=egl before importing it, or use a subprocess)."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL" in sys.modules:
        if current != "egl":
            raise HeadlessGLError(
                "PyOpenGL was imported before headless rendering was set up "
                f"(PYOPENGL_PLATFORM={current!r}); set PYOPENGL_PLATFORM=egl before importing "
                "OpenGL, or render headless in a separate process")
        return
    os.environ["PYOPENGL_PLATFORM"] = "egl"


def _egl_displays() -> list[tuple[str, Any]]:
    """Candidate EGL displays, best first: Mesa surfaceless, then each EGL device (NVIDIA
    headless), then the default display (needs a running display server)."""
    from OpenGL import EGL
    from OpenGL.EGL.EXT.platform_base import eglGetPlatformDisplayEXT

    candidates: list[tuple[str, Any]] = []
    extensions = EGL.eglQueryString(EGL.EGL_NO_DISPLAY, EGL.EGL_EXTENSIONS) or b""
    if b"EGL_MESA_platform_surfaceless" in extensions:
        candidates.append(("surfaceless", eglGetPlatformDisplayEXT(_EGL_PLATFORM_SURFACELESS_MESA, None, None)))
    if b"EGL_EXT_platform_device" in extensions:
        try:
            from OpenGL.EGL.EXT.device_enumeration import eglQueryDevicesEXT
            count = EGL.EGLint()
            devices = (EGL.EGLDeviceEXT * 8)()
            if eglQueryDevicesEXT(8, devices, ctypes.pointer(count)):
                for i in range(count.value):
                    display = eglGetPlatformDisplayEXT(_EGL_PLATFORM_DEVICE_EXT, devices[i], None)
                    candidates.append((f"device {i}", display))
        except (ImportError, EGL.EGLError, AttributeError) as exc:
            log.debug("EGL device enumeration unavailable: %s", exc)
    candidates.append(("default", EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)))
    return candidates


SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "swiftshader")


def is_software_renderer() -> bool:
    """True when the current GL context rasterises on the CPU."""
    from OpenGL import GL

    name = (GL.glGetString(GL.GL_RENDERER) or b"").decode(errors="replace").lower()
    return any(s in name for s in SOFTWARE_RENDERERS)


class EglContext:
    """An OpenGL 3.3 core context with no surface, current on the creating thread.

    Use as a context manager or call `close()`. Only one thread may use it at a time.
    """

    def __init__(self) -> None:
        use_egl_platform()
        from OpenGL import EGL

        self._egl = EGL
        self._context = None
        errors: list[str] = []
        software: tuple[str, Any, Any] | None = None
        # A GPU beats a software rasteriser: with several EGL devices (NVIDIA beside Mesa's
        # llvmpipe), keep trying until one is hardware, else fall back to the first that worked.
        for name, display in _egl_displays():
            try:
                display, context = self._create(display)
            except (EGL.EGLError, HeadlessGLError) as exc:
                errors.append(f"{name}: {exc}")
                continue
            if not is_software_renderer():
                self._use(name, display, context)
                return
            if software is None:
                software = (name, display, context)
            else:
                EGL.eglDestroyContext(display, context)
        if software is None:
            raise HeadlessGLError("no EGL display gave an OpenGL 3.3 core context: " + "; ".join(errors))
        self._use(*software)

    def _use(self, name: str, display: Any, context: Any) -> None:
        self._display, self._context = display, context
        self.make_current()
        self.description = name
        from OpenGL import GL
        log.info("headless EGL context on the %s display: %s", name, GL.glGetString(GL.GL_RENDERER))

    def _create(self, display: Any) -> tuple[Any, Any]:
        EGL = self._egl
        major, minor = EGL.EGLint(), EGL.EGLint()
        if not display or not EGL.eglInitialize(display, ctypes.pointer(major), ctypes.pointer(minor)):
            raise HeadlessGLError("eglInitialize failed")
        config_attribs = (EGL.EGLint * 5)(EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT,
                                          EGL.EGL_SURFACE_TYPE, EGL.EGL_PBUFFER_BIT, EGL.EGL_NONE)
        config, count = EGL.EGLConfig(), EGL.EGLint()
        if not EGL.eglChooseConfig(display, config_attribs, ctypes.pointer(config), 1, ctypes.pointer(count)) \
                or count.value < 1:
            raise HeadlessGLError("no EGL config renders OpenGL")
        if not EGL.eglBindAPI(EGL.EGL_OPENGL_API):
            raise HeadlessGLError("eglBindAPI(OpenGL) failed")
        context_attribs = (EGL.EGLint * 7)(
            EGL.EGL_CONTEXT_MAJOR_VERSION, 3, EGL.EGL_CONTEXT_MINOR_VERSION, 3,
            EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL.EGL_NONE)
        context = EGL.eglCreateContext(display, config, EGL.EGL_NO_CONTEXT, context_attribs)
        if not context:
            raise HeadlessGLError("eglCreateContext(3.3 core) failed")
        if not EGL.eglMakeCurrent(display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, context):
            EGL.eglDestroyContext(display, context)
            raise HeadlessGLError("eglMakeCurrent without a surface failed")
        return display, context

    def make_current(self) -> None:
        EGL = self._egl
        if not EGL.eglMakeCurrent(self._display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, self._context):
            raise HeadlessGLError("eglMakeCurrent failed")

    def close(self) -> None:
        if self._context is None:
            return
        EGL = self._egl
        EGL.eglMakeCurrent(self._display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
        EGL.eglDestroyContext(self._display, self._context)
        self._context = None

    def __enter__(self) -> "EglContext":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Framebuffer:
    """An RGBA8 + depth24 framebuffer of `width` x `height` pixels, multisampled when
    `samples` > 1 (resolved into a single-sample one for reading back).

    Needs a current GL context. `bind()` before drawing; `read_bgr()` returns
    (height, width, 3) uint8 BGR, top row first.
    """

    def __init__(self, width: int, height: int, samples: int = 4) -> None:
        from OpenGL import GL

        self._gl = GL
        self.width, self.height = int(width), int(height)
        max_samples = int(GL.glGetIntegerv(GL.GL_MAX_SAMPLES))
        self.samples = max(0, min(int(samples), max_samples)) if samples > 1 else 0
        self._draw_fbo, self._draw_rbos = self._make(self.samples)
        self._read_fbo, self._read_rbos = self._make(0) if self.samples else (self._draw_fbo, [])

    def _make(self, samples: int) -> tuple[int, list[int]]:
        GL = self._gl
        w, h = self.width, self.height
        fbo = int(GL.glGenFramebuffers(1))
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
        color, depth = (int(x) for x in GL.glGenRenderbuffers(2))
        for rbo, fmt, attachment in ((color, GL.GL_RGBA8, GL.GL_COLOR_ATTACHMENT0),
                                     (depth, GL.GL_DEPTH_COMPONENT24, GL.GL_DEPTH_ATTACHMENT)):
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rbo)
            if samples:
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, w, h)
            else:
                GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, w, h)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, attachment, GL.GL_RENDERBUFFER, rbo)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise HeadlessGLError(f"framebuffer incomplete (status 0x{int(status):x})")
        return fbo, [color, depth]

    def bind(self) -> None:
        self._gl.glBindFramebuffer(self._gl.GL_FRAMEBUFFER, self._draw_fbo)
        self._gl.glViewport(0, 0, self.width, self.height)

    def read_bgr(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR of what was drawn, top row first."""
        GL = self._gl
        w, h = self.width, self.height
        if self.samples:
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._draw_fbo)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._read_fbo)
            GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._read_fbo)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, w, h, GL.GL_BGR, GL.GL_UNSIGNED_BYTE)
        image = np.frombuffer(data, np.uint8).reshape(h, w, 3)
        # GL rows run bottom-up; images run top-down.
        return np.ascontiguousarray(image[::-1])

    def close(self) -> None:
        GL = self._gl
        fbos = {self._draw_fbo, self._read_fbo}
        GL.glDeleteRenderbuffers(len(self._draw_rbos + self._read_rbos), self._draw_rbos + self._read_rbos)
        GL.glDeleteFramebuffers(len(fbos), list(fbos))
