"""SceneRenderer: turns one FrameResult into pixels in the current OpenGL framebuffer.

The same object draws in the Qt viewport (QOpenGLWidget's context, its framebuffer bound)
and headless (engine.render.headless, an EGL context and an FBO). It never binds a
framebuffer itself and re-fills its GL buffers and textures in place from frame to frame.

Views (ViewSettings.mode):
- "overlay": the camera image, letterboxed, with mediapipe's landmarks as point splats, the
  fitted face mesh as a wireframe with its 68 landmarks, and the body skeleton as lines, all
  in image pixels.
- "mesh": face and body meshes in 3D from an orbit camera (Phong or matcap, wireframe).
- "volume": one of the VolumeResult's colour/normal images, the one nearest a chosen yaw.
- "split": overlay on the left, mesh on the right.
A view whose stage is off, failed, or found nothing shows a placeholder saying so.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from OpenGL import GL

from engine.pinhole import PinholeCamera
from engine.frame import Frame
from engine.render.drawers.mesh import MeshDrawer
from engine.render.drawers.overlay import OverlayDrawer
from engine.render.drawers.quad import FULL_VIEWPORT, MIRRORED_VIEWPORT, QuadDrawer
from engine.render.drawers.text import TextDrawer
from engine.render.geometry import bbox_center, unique_edges
from engine.render.gl_objects import DynamicTexture
from engine.render.status import FrameResultLike, stage_placeholder
from engine.render.topology import MEDIAPIPE_POSE_EDGES
from engine.render.transforms import (Rect, fit_rect, image_to_ndc, mirror_x, nearest_index, orbit_view,
                                      perspective, split_rect, vertical_fov)
from engine.render.view import ViewSettings
from engine.render.volume_image import coverage_scale, lattice_layers

log = logging.getLogger(__name__)

FACE_POINT_COLOR = (0.2, 1.0, 0.4, 0.9)
POSE_POINT_COLOR = (1.0, 0.55, 0.1, 1.0)
FACE_WIRE_COLOR = (0.3, 0.85, 1.0, 0.35)
FACE_FIT_POINT_COLOR = (1.0, 0.25, 0.85, 1.0)  # the fitted model's 68 landmarks
SKELETON_COLOR = (1.0, 0.85, 0.2, 0.95)
FACE_ALBEDO = (0.85, 0.66, 0.55)
BODY_ALBEDO = (0.55, 0.62, 0.75)
POSE_VISIBILITY_MIN = 0.5
# A face wireframe over a webcam image has fewer pixels than BFM has edges (~115k): past
# this many only every k-th edge is drawn, which looks the same. Edges are drawn as GL
# lines, each once: polygon-mode triangles draw every shared edge twice and cost software
# GL (llvmpipe) ~3x the time on the GUI thread (measured with py-spy under `bench app`).
MAX_OVERLAY_WIRE_EDGES = 12000
# The face fit is drawn over the body's own head: it wins where it lies within this many
# metres behind the body's surface (the two fits disagree by millimetres to a centimetre).
FACE_OVER_BODY_M = 0.01

class SceneRenderer:
    """Draws FrameResults with OpenGL 3.3 core. Call `initialize()` once with the GL context
    current, then `render()` per paint, and `close()` (context current) when done."""

    def __init__(self) -> None:
        self._ready = False
        self._frame_key: tuple[str, int] | None = None
        self._frame_image: np.ndarray | None = None
        self._volume_source: Any = None
        self._volume_choice: tuple[int, str] | None = None
        self._wire_source: np.ndarray | None = None  # the triangles _wire_edges were made from
        self._wire_edges: np.ndarray | None = None

    def initialize(self) -> None:
        self.quad = QuadDrawer()
        self.text = TextDrawer(self.quad)
        self.overlay = OverlayDrawer()
        self.mesh = MeshDrawer()
        self.frame_texture = DynamicTexture()
        self.volume_texture = DynamicTexture()
        self._ready = True
        log.debug("scene renderer on %s", self.gl_description())

    def gl_description(self) -> str:
        """The GL renderer and version strings, for logs and benchmarks."""
        renderer = GL.glGetString(GL.GL_RENDERER) or b"?"
        version = GL.glGetString(GL.GL_VERSION) or b"?"
        return f"{renderer.decode(errors='replace')} (OpenGL {version.decode(errors='replace')})"

    def gpu_allocations(self) -> int:
        """GL buffer and texture storage (re)allocations so far; steady frames add none."""
        return (self.overlay.buffer_allocations() + self.mesh.buffer_allocations()
                + self.frame_texture.allocations + self.volume_texture.allocations)

    def render(self, frame_result: FrameResultLike | None, view: ViewSettings, width: int, height: int) -> None:
        """Draw into the currently bound framebuffer, whose size is `width` x `height` pixels."""
        if not self._ready:
            raise RuntimeError("SceneRenderer.initialize() must run in a current GL context first")
        if width <= 0 or height <= 0:
            return  # minimised window
        full = Rect(0, 0, int(width), int(height))
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glViewport(0, 0, full.width, full.height)
        GL.glClearColor(*view.background, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        if frame_result is None:
            self._placeholder(["waiting for frames"], full)
        elif view.mode == "overlay":
            self._overlay(frame_result, view, full)
        elif view.mode == "mesh":
            self._mesh(frame_result, view, full)
        elif view.mode == "volume":
            self._volume(frame_result, view, full)
        elif view.mode == "split":
            left, right = split_rect(full)
            self._overlay(frame_result, view, left)
            self._mesh(frame_result, view, right)
        else:
            raise ValueError(f"unknown view mode {view.mode!r}")
        # Leave the state Qt's painter (and the next render) expects.
        GL.glViewport(0, 0, full.width, full.height)
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glBindVertexArray(0)
        GL.glUseProgram(0)

    # -- views ---------------------------------------------------------------------------

    def _overlay(self, fr: FrameResultLike, view: ViewSettings, rect: Rect) -> None:
        image = fr.frame.image
        h, w = image.shape[:2]
        self._upload_frame(fr.frame)
        inner = fit_rect(rect, w, h)
        GL.glViewport(inner.x, inner.y, inner.width, inner.height)
        self.quad.draw(self.frame_texture, MIRRORED_VIEWPORT if view.mirror else FULL_VIEWPORT)
        mvp = mirror_x(view.mirror) @ image_to_ndc(w, h)
        face, body, perception = (fr.results.get(k) for k in ("face", "body", "perception"))
        if view.show_face_mesh and face is not None:
            self.overlay.draw_lines("face_wire", face.vertices_image, self._overlay_edges(face.triangles),
                                    mvp, FACE_WIRE_COLOR)
            self.overlay.draw_points("face_fit_points", face.landmarks_2d, mvp, FACE_FIT_POINT_COLOR,
                                     view.point_size_px)
        # Sizes are given in screen pixels; this converts them to image pixels.
        image_px_per_screen_px = w / inner.width
        if view.show_skeleton:
            self._skeleton(body, perception, mvp, view.line_width_px * image_px_per_screen_px / 2)
        if view.show_landmarks and perception is not None:
            point_px = view.point_size_px
            if perception.face_landmarks is not None:
                self.overlay.draw_points("face_points", perception.face_landmarks[:, :2], mvp,
                                         FACE_POINT_COLOR, max(3.0, 0.75 * point_px))
            if perception.pose_landmarks is not None:
                self.overlay.draw_points("pose_points", perception.pose_landmarks[:, :2], mvp,
                                         POSE_POINT_COLOR, point_px * 1.5)

    def _skeleton(self, body: Any, perception: Any, mvp: np.ndarray, half_width: float) -> None:
        """Body fit keypoints when the body stage has a result, else mediapipe's pose."""
        if body is not None:
            points, visible = body.keypoints_2d, np.asarray(body.keypoint_visible, bool)
        elif perception is not None and perception.pose_landmarks is not None:
            points = perception.pose_landmarks[:, :2]
            vis = perception.pose_visibility
            visible = np.ones(len(points), bool) if vis is None else vis >= POSE_VISIBILITY_MIN
        else:
            return
        edges = MEDIAPIPE_POSE_EDGES[(MEDIAPIPE_POSE_EDGES < len(points)).all(axis=1)]
        edges = edges[visible[edges[:, 0]] & visible[edges[:, 1]]]
        self.overlay.draw_thick_lines("skeleton", points, edges, half_width, mvp, SKELETON_COLOR)

    def _mesh(self, fr: FrameResultLike, view: ViewSettings, rect: Rect) -> None:
        GL.glViewport(rect.x, rect.y, rect.width, rect.height)
        face, body = fr.results.get("face"), fr.results.get("body")
        meshes = []
        if view.show_body and body is not None:
            meshes.append(("body", body.vertices, body.faces, BODY_ALBEDO, 0.0, getattr(body, "vertex_colours", None)))
        if view.show_face and face is not None:
            meshes.append(("face", face.vertices_camera, face.triangles, FACE_ALBEDO, FACE_OVER_BODY_M,
                           getattr(face, "vertex_colours", None)))
        if not meshes:
            wanted = [s for s, on in (("face", view.show_face), ("body", view.show_body)) if on]
            self._placeholder([stage_placeholder(fr, s) or f"{s} hidden" for s in wanted] or ["no mesh selected"], rect)
            return
        model_view, projection = self.mesh_matrices(fr, view, rect, [v for _, v, *_ in meshes])
        for slot, vertices, faces, albedo, toward_eye, colours in meshes:
            self.mesh.draw(slot, vertices, faces, model_view, projection, albedo, view.shading,
                           view.wireframe, toward_eye_m=toward_eye, colours=colours)
        # Say why a wanted mesh is missing (e.g. "body stage off" next to a face).
        shown = {slot for slot, *_ in meshes}
        missing = [stage_placeholder(fr, s) for s, on in (("face", view.show_face), ("body", view.show_body))
                   if on and s not in shown]
        if view.show_status and any(missing):
            GL.glDisable(GL.GL_DEPTH_TEST)
            self.text.draw_bottom_left("\n".join(m for m in missing if m), rect)

    @classmethod
    def mesh_matrices(cls, fr: FrameResultLike, view: ViewSettings, rect: Rect,
                      vertex_sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(model_view, projection) of the mesh view of `fr` in `rect`, framing the given
        camera-space vertex sets (what `_mesh` draws; also for measuring its renders)."""
        bounds = np.concatenate([np.stack([v.min(axis=0), v.max(axis=0)]) for v in vertex_sets])
        target = bbox_center(bounds)
        distance = max(float(np.linalg.norm(target)), 1e-3) * view.orbit.distance
        model_view = orbit_view(target, view.orbit.yaw_deg, view.orbit.pitch_deg, view.orbit.distance)
        radius = float(np.linalg.norm(bounds.max(axis=0) - bounds.min(axis=0))) / 2
        near = max(1e-3, min(0.5 * distance, distance - 2 * radius))
        projection = mirror_x(view.mirror) @ perspective(cls._fovy(fr, view, rect), rect.aspect, near,
                                                         distance + 4 * radius + 1.0)
        return model_view, projection

    @staticmethod
    def _fovy(fr: FrameResultLike, view: ViewSettings, rect: Rect) -> float:
        """Vertical FOV (radians) that shows at least the input camera's frustum in `rect`,
        so the default orbit lines the meshes up with the camera image."""
        h, w = fr.frame.image.shape[:2]
        body = fr.results.get("body")
        focal = float(body.camera_focal_px) if body is not None and body.camera_focal_px > 0 \
            else PinholeCamera.from_fov(w, h, view.hfov_deg).focal_px
        fovy_image = 2.0 * math.atan(0.5 * h / focal)
        hfov_image = math.degrees(2.0 * math.atan(0.5 * w / focal))
        return max(fovy_image, vertical_fov(hfov_image, rect.aspect))

    def _volume(self, fr: FrameResultLike, view: ViewSettings, rect: Rect) -> None:
        volume = fr.results.get("volume")
        if volume is None or len(volume.yaw_deg) == 0:
            self._placeholder([stage_placeholder(fr, "volume") or "volume result is empty"], rect)
            return
        index = nearest_index(volume.yaw_deg, view.volume_yaw_deg)
        choice = (index, view.volume_channel)
        if volume is not self._volume_source or choice != self._volume_choice:
            # One lattice-sized image (colour + outline distance); the shader draws it at the
            # viewport's own pixels with a one-pixel anti-aliased outline
            # (engine.render.volume_image): 0.6 ms of GUI thread a new volume at 65 px, 1.6 at
            # 129, and no large upload.
            self.volume_texture.upload(lattice_layers(volume, index, view.volume_channel))
            self._volume_source, self._volume_choice = volume, choice
        inner = fit_rect(rect, self.volume_texture.width, self.volume_texture.height)
        GL.glViewport(inner.x, inner.y, inner.width, inner.height)
        self.quad.draw(self.volume_texture, MIRRORED_VIEWPORT if view.mirror else FULL_VIEWPORT,
                       coverage_scale=coverage_scale(inner.width / self.volume_texture.width))
        if view.show_status:
            GL.glViewport(rect.x, rect.y, rect.width, rect.height)
            label = f"{view.volume_channel} at yaw {float(volume.yaw_deg[index]):.0f} deg ({volume.backend})"
            self.text.draw_bottom_left(label, rect)

    # -- helpers -------------------------------------------------------------------------

    def _upload_frame(self, frame: Frame) -> None:
        # Re-rendering the same frame (orbiting, repaint) re-uses the uploaded texture.
        key = (frame.source_id, frame.index)
        if key != self._frame_key or frame.image is not self._frame_image:
            self.frame_texture.upload(frame.image)
            self._frame_key, self._frame_image = key, frame.image

    def _overlay_edges(self, triangles: np.ndarray) -> np.ndarray:
        """The face wireframe's edges, each once and at most MAX_OVERLAY_WIRE_EDGES, kept
        for as long as the stage hands out the same triangle array (every frame)."""
        if triangles is not self._wire_source:
            edges = unique_edges(triangles)
            step = -(-len(edges) // MAX_OVERLAY_WIRE_EDGES)
            self._wire_edges, self._wire_source = edges[::step], triangles
        return self._wire_edges

    def _placeholder(self, lines: list[str], rect: Rect) -> None:
        GL.glViewport(rect.x, rect.y, rect.width, rect.height)
        self.text.draw_centered("\n".join(lines), rect)

    def close(self) -> None:
        if not self._ready:
            return
        for part in (self.text, self.quad, self.overlay, self.mesh, self.frame_texture, self.volume_texture):
            part.close()
        self._ready = False
        self._frame_key = self._frame_image = None
        self._volume_source = None
