"""Image-space overlays: landmark splats, skeleton lines and triangle wireframes, drawn over
the camera image with a matrix that maps image pixels to the image's viewport."""
from __future__ import annotations

import numpy as np
from OpenGL import GL

from engine.render.geometry import thick_line_quads
from engine.render.gl_objects import DynamicBuffer, ShaderProgram, VertexArray, attach_float_attribute

Color = tuple[float, float, float, float]


class OverlayDrawer:
    """Points, lines and wireframes in any coordinate frame given by an `mvp` matrix.

    Each named `slot` ("face_points", "skeleton", ...) keeps its own GL buffers, so layers
    drawn every frame re-fill their buffers in place instead of fighting over one.
    """

    def __init__(self) -> None:
        self._points = ShaderProgram("points")
        self._lines = ShaderProgram("lines")
        self._slots: dict[str, VertexArray] = {}
        # One quad (triangle strip, corners in [-1, 1]^2) shared by every point slot.
        self._corners = DynamicBuffer()
        self._corners.upload(np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32))

    def _slot(self, name: str) -> VertexArray:
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = VertexArray(with_normals=False, with_indices=True)
        return slot

    def _point_slot(self, name: str) -> VertexArray:
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = VertexArray(with_normals=False, with_indices=False)
            slot.bind()
            attach_float_attribute(1, self._corners, 2)
            GL.glVertexAttribDivisor(0, 1)  # positions advance per instance, corners per vertex
            GL.glBindVertexArray(0)
        return slot

    def draw_points(self, slot: str, points: np.ndarray, mvp: np.ndarray, color: Color, size_px: float) -> None:
        """Round splats of diameter `size_px` (framebuffer pixels) centred on `points`:
        (N, 2) or (N, 3) float32 in the frame `mvp` maps to clip space."""
        if len(points) == 0:
            return
        vao = self._point_slot(slot)
        vao.set_positions(points)
        viewport = GL.glGetIntegerv(GL.GL_VIEWPORT)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._points.use()
        self._points.set_mat4("u_mvp", mvp)
        self._points.set_float("u_point_size", size_px)
        self._points.set_vec2("u_viewport", (viewport[2], viewport[3]))
        self._points.set_vec4("u_color", color)
        vao.bind()
        GL.glDrawArraysInstanced(GL.GL_TRIANGLE_STRIP, 0, 4, len(points))
        GL.glBindVertexArray(0)
        GL.glDisable(GL.GL_BLEND)

    def draw_lines(self, slot: str, points: np.ndarray, edges: np.ndarray, mvp: np.ndarray, color: Color) -> None:
        """Segments between `points[edges[:, 0]]` and `points[edges[:, 1]]`; edges: (E, 2) ints."""
        if len(points) == 0 or len(edges) == 0:
            return
        vao = self._slot(slot)
        vao.set_positions(points)
        vao.set_indices(np.asarray(edges))
        self._draw_elements(vao, GL.GL_LINES, mvp, color)

    def draw_thick_lines(self, slot: str, points: np.ndarray, edges: np.ndarray, half_width: float,
                         mvp: np.ndarray, color: Color) -> None:
        """Like draw_lines, but each segment is a quad `2 * half_width` wide, in the units of
        `points` (image pixels for overlays)."""
        if len(points) == 0 or len(edges) == 0:
            return
        corners, triangles = thick_line_quads(points, np.asarray(edges), half_width)
        vao = self._slot(slot)
        vao.set_positions(corners)
        vao.set_indices(triangles)
        self._draw_elements(vao, GL.GL_TRIANGLES, mvp, color)

    def draw_wireframe(self, slot: str, vertices: np.ndarray, triangles: np.ndarray, mvp: np.ndarray,
                       color: Color) -> None:
        """The edges of (F, 3) `triangles` over (V, 3) `vertices` (each shared edge is drawn
        twice; with alpha blending that reads as a slightly stronger line)."""
        if len(vertices) == 0 or len(triangles) == 0:
            return
        vao = self._slot(slot)
        vao.set_positions(vertices)
        vao.set_indices(np.asarray(triangles))
        GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_LINE)
        self._draw_elements(vao, GL.GL_TRIANGLES, mvp, color)
        GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_FILL)

    def _draw_elements(self, vao: VertexArray, primitive: int, mvp: np.ndarray, color: Color) -> None:
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._lines.use()
        self._lines.set_mat4("u_mvp", mvp)
        self._lines.set_vec4("u_color", color)
        vao.bind()
        GL.glDrawElements(primitive, vao.index_count, GL.GL_UNSIGNED_INT, None)
        GL.glBindVertexArray(0)
        GL.glDisable(GL.GL_BLEND)

    def buffer_allocations(self) -> int:
        """Total GL buffer (re)allocations so far, for checks that steady frames allocate none."""
        return sum(b.allocations for s in self._slots.values() for b in (s.positions, s.indices) if b is not None)

    def close(self) -> None:
        for slot in self._slots.values():
            slot.close()
        self._slots.clear()
        self._corners.close()
        self._points.close()
        self._lines.close()
