"""Draws a texture into a rectangle of the current viewport."""
from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL

from engine.render.gl_objects import DynamicTexture, ShaderProgram

FULL_VIEWPORT = (-1.0, -1.0, 1.0, 1.0)
MIRRORED_VIEWPORT = (1.0, -1.0, -1.0, 1.0)  # left and right swapped (selfie view)


class QuadDrawer:
    """Textured quads. `rect` is (x0, y0, x1, y1) in NDC of the current viewport."""

    def __init__(self) -> None:
        self._program = ShaderProgram("quad")
        self._vao = int(GL.glGenVertexArrays(1))
        self._vbo = int(GL.glGenBuffers(1))
        corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)  # a triangle strip
        GL.glBindVertexArray(self._vao)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, corners.nbytes, corners, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 2, GL.GL_FLOAT, GL.GL_FALSE, 0, ctypes.c_void_p(0))
        GL.glBindVertexArray(0)

    def draw(self, texture: DynamicTexture, rect: tuple[float, float, float, float] = FULL_VIEWPORT,
             opacity: float = 1.0, tint: tuple[float, float, float] | None = None,
             coverage_scale: float | None = None) -> None:
        """Draw `texture` stretched over `rect`. With `tint`, the texture's red channel is
        used as coverage of a flat `tint` colour (text masks). With `coverage_scale`, the
        texture's alpha is a ramp across an outline (0.5 on it) and its colour is drawn over
        black with coverage (alpha - 0.5) * coverage_scale + 0.5 (engine.render.volume_image)."""
        blend = opacity < 1.0 or tint is not None
        if blend:
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glDisable(GL.GL_DEPTH_TEST)
        self._program.use()
        texture.bind(0)
        self._program.set_int("u_texture", 0)
        self._program.set_vec4("u_rect", rect)
        self._program.set_float("u_opacity", opacity)
        self._program.set_int("u_alpha_from_red", tint is not None)
        self._program.set_vec3("u_tint", tint or (1.0, 1.0, 1.0))
        self._program.set_int("u_use_coverage", coverage_scale is not None)
        self._program.set_float("u_coverage_scale", coverage_scale or 1.0)
        GL.glBindVertexArray(self._vao)
        GL.glDrawArrays(GL.GL_TRIANGLE_STRIP, 0, 4)
        GL.glBindVertexArray(0)
        if blend:
            GL.glDisable(GL.GL_BLEND)

    def close(self) -> None:
        GL.glDeleteVertexArrays(1, [self._vao])
        GL.glDeleteBuffers(1, [self._vbo])
        self._program.close()
