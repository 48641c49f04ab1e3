"""Lit triangle meshes in 3D (Phong or matcap), with an optional wireframe on top."""
from __future__ import annotations

import numpy as np
from scipy import sparse
from OpenGL import GL

from engine.render.geometry import incidence_matrix, vertex_normals
from engine.render.gl_objects import ShaderProgram, VertexArray

_SHADING = {"phong": 0, "matcap": 1, "textured": 2}


class MeshDrawer:
    """Draws camera-space meshes; each named `slot` ("face", "body") keeps its own buffers."""

    def __init__(self) -> None:
        self._program = ShaderProgram("mesh")
        self._lines = ShaderProgram("lines")
        self._slots: dict[str, VertexArray] = {}
        self._incidence: dict[str, sparse.csr_matrix] = {}  # per slot, for its current topology
        self._colour_source: dict[str, np.ndarray] = {}  # per slot, the colours last uploaded
        self._vertex_source: dict[str, np.ndarray] = {}  # per slot, the vertices last uploaded

    def draw(self, slot: str, vertices: np.ndarray, faces: np.ndarray, model_view: np.ndarray,
             projection: np.ndarray, albedo: tuple[float, float, float], shading: str = "phong",
             wireframe: bool = False, toward_eye_m: float = 0.0, colours: np.ndarray | None = None) -> None:
        """vertices: (V, 3) float32 camera space (metres); faces: (F, 3) ints.
        model_view: (4, 4) camera space -> GL view space (see transforms.orbit_view).
        toward_eye_m > 0 makes this mesh win the depth test against another surface up to
        that many metres in front of it (the face fit drawn on the body's head).
        colours: (V, 3) uint8 BGR per vertex, drawn by shading "textured" (a mesh without
        colours is drawn "phong" then)."""
        if len(vertices) == 0 or len(faces) == 0:
            return
        vao = self._slots.get(slot)
        if vao is None:
            vao = self._slots[slot] = VertexArray(with_normals=True, with_indices=True, with_colours=True)
        faces = np.asarray(faces)
        incidence = self._incidence.get(slot)
        new_topology = vao.set_indices(faces) or incidence is None or incidence.shape[0] != len(vertices)
        if new_topology:
            self._incidence[slot] = incidence_matrix(faces, len(vertices))
        # Results arrive slower than the display repaints: the same vertex array (the same
        # result) keeps its normals and its upload.
        if new_topology or self._vertex_source.get(slot) is not vertices:
            vao.set_positions(vertices, vertex_normals(vertices, faces, self._incidence[slot]))
            self._vertex_source[slot] = vertices
        textured = shading == "textured" and colours is not None and len(colours) == len(vertices)
        if not textured and shading == "textured":
            shading = "phong"
        elif textured and self._colour_source.get(slot) is not colours:
            # The stages hand out the same colour array until their next sample: upload once.
            assert vao.colours is not None
            self._colour_source[slot] = colours
            vao.colours.upload(np.asarray(colours, np.float32)[:, ::-1] * np.float32(1 / 255))  # BGR -> RGB
        GL.glEnable(GL.GL_DEPTH_TEST)
        # The pull towards the eye is one constant depth shift for the whole mesh, never a
        # slope-scaled polygon offset: that one moves steep triangles (the far side of a fold
        # at the eyelids, lips or nose) further than the ones in front of them, which then
        # show through as dotted dark lines along the triangle edges.
        shift = depth_shift_ndc(vertices, model_view, projection, toward_eye_m)
        if wireframe:
            # The fill is pushed back a little so the lines, drawn at the surface's depth,
            # win the depth test instead of z-fighting with it.
            GL.glEnable(GL.GL_POLYGON_OFFSET_FILL)
            GL.glPolygonOffset(1.0, 1.0)
        self._program.use()
        self._program.set_float("u_depth_shift_ndc", shift)
        self._program.set_mat4("u_model_view", model_view)
        self._program.set_mat4("u_projection", projection)
        self._program.set_vec3("u_albedo", albedo)
        self._program.set_int("u_shading", _SHADING.get(shading, 0))
        vao.bind()
        # Without colours this frame the attribute is off: never read a stale or empty buffer.
        (GL.glEnableVertexAttribArray if textured else GL.glDisableVertexAttribArray)(2)
        GL.glDrawElements(GL.GL_TRIANGLES, vao.index_count, GL.GL_UNSIGNED_INT, None)
        GL.glDisable(GL.GL_POLYGON_OFFSET_FILL)
        if wireframe:
            self._draw_wireframe(vao, projection @ model_view, shift)
        GL.glBindVertexArray(0)

    def _draw_wireframe(self, vao: VertexArray, mvp: np.ndarray, shift_ndc: float) -> None:
        GL.glDepthFunc(GL.GL_LEQUAL)
        GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_LINE)
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        self._lines.use()
        self._lines.set_mat4("u_mvp", mvp)
        self._lines.set_float("u_depth_shift_ndc", shift_ndc)
        self._lines.set_vec4("u_color", (0.05, 0.05, 0.08, 0.55))
        GL.glDrawElements(GL.GL_TRIANGLES, vao.index_count, GL.GL_UNSIGNED_INT, None)
        GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_FILL)
        GL.glDisable(GL.GL_BLEND)
        GL.glDepthFunc(GL.GL_LESS)

    def buffer_allocations(self) -> int:
        """Total GL buffer (re)allocations so far, for checks that steady frames allocate none."""
        return sum(b.allocations for s in self._slots.values()
                   for b in (s.positions, s.normals, s.indices) if b is not None)

    def close(self) -> None:
        for slot in self._slots.values():
            slot.close()
        self._slots.clear()
        self._incidence.clear()
        self._colour_source.clear()
        self._vertex_source.clear()
        self._program.close()
        self._lines.close()


def depth_shift_ndc(vertices: np.ndarray, model_view: np.ndarray, projection: np.ndarray,
                    toward_eye_m: float) -> float:
    """The NDC depth change of moving the mesh's centre `toward_eye_m` metres nearer the eye,
    as one constant for all its vertices (so its own triangles keep their depth order)."""
    if toward_eye_m <= 0.0 or len(vertices) == 0:
        return 0.0
    centre = np.asarray(model_view, np.float64) @ np.append(np.asarray(vertices, np.float64).mean(axis=0), 1.0)
    z = min(float(centre[2]), -1e-6)  # GL view space looks down -z

    def ndc_depth(z_view: float) -> float:
        clip = np.asarray(projection, np.float64) @ np.array([0.0, 0.0, z_view, 1.0])
        return float(clip[2] / clip[3])

    nearer = min(z + toward_eye_m, z / 2.0)  # never past the eye
    return max(ndc_depth(z) - ndc_depth(nearer), 0.0)
