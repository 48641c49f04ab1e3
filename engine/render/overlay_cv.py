"""CPU overlay drawing with OpenCV, for headless videos (overlay.mp4) and thumbnails.

Drawing lives apart from inference: these functions read results and never change them.
The GL viewport draws the same things with shaders (engine/render/scene.py).
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.render.skeleton import POSE_CONNECTIONS

FACE_COLOUR = (80, 220, 80)  # BGR
MESH_COLOUR = (255, 200, 60)
BODY_COLOUR = (60, 160, 255)
JOINT_COLOUR = (40, 80, 255)
MASK_TINT = np.array([180, 90, 200], np.float32)
NEAR_PLANE_M = 0.05  # body triangles closer than this to the camera are culled
# A face mesh holds ~9000 triangles in a ~150 px face: a quarter of them still shows the
# fit's shape, and anti-aliased lines cost ~0.4 ms per thousand on every overlay frame.
FACE_WIRE_TRIANGLES = 2500


def draw_segmentation(image: np.ndarray, mask: np.ndarray, strength: float = 0.25) -> None:
    """Tint pixels where the person mask (H, W) in [0, 1] is above 0.5, in place."""
    if mask.shape[:2] != image.shape[:2]:
        mask = cv2.resize(mask, (image.shape[1], image.shape[0]))
    _blend_where(image, (mask > 0.5).view(np.uint8), MASK_TINT, strength)


def _blend_where(image: np.ndarray, mask_u8: np.ndarray, colour, alpha: float) -> None:
    """image = (1 - alpha) * image + alpha * colour where mask_u8 != 0, in place. Only the
    mask's bounding box is blended, with OpenCV's scale and add plus a masked copy: numpy's
    boolean indexing or a whole-frame blend cost several times more (this runs on every frame
    of overlay.mp4)."""
    x, y, w, h = cv2.boundingRect(mask_u8)
    if w == 0 or h == 0:
        return
    roi = image[y:y + h, x:x + w]
    tinted = cv2.convertScaleAbs(roi, alpha=1.0 - alpha)
    offset = [float(c) * alpha for c in np.asarray(colour, np.float32).ravel()[:3]]
    tinted = cv2.add(tinted, (*offset, 0.0))
    cv2.copyTo(tinted, mask_u8[y:y + h, x:x + w], roi)


def draw_points(image: np.ndarray, points: np.ndarray, colour, radius: int = 1) -> None:
    """points: (N, 2) pixels."""
    for x, y in np.round(points).astype(np.int32):
        cv2.circle(image, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)


def draw_mesh_wireframe(image: np.ndarray, vertices_2d: np.ndarray, triangles: np.ndarray,
                        colour=MESH_COLOUR, max_triangles: int = 6000) -> None:
    """Draw triangle edges (a stride-subsample of very dense meshes keeps it fast)."""
    if len(triangles) > max_triangles:
        triangles = triangles[:: int(np.ceil(len(triangles) / max_triangles))]
    polys = np.round(vertices_2d[triangles] * 4).astype(np.int32)  # 2 bits of sub-pixel
    cv2.polylines(image, list(polys), True, colour, 1, cv2.LINE_AA, shift=2)


def draw_mesh_fill(image: np.ndarray, vertices_2d: np.ndarray, triangles: np.ndarray,
                   colour, alpha: float, depth: np.ndarray | None = None, near: float = 0.0) -> None:
    """Blend the mesh's projected silhouette over the image (a dense mesh's wireframe at
    image resolution is unreadable), in place. With `depth` (V,), triangles reaching `near`
    or nearer are left out."""
    from engine.render.raster_cpu import coverage  # numba (compiled once, cached)

    mask = coverage(vertices_2d, triangles, image.shape[0], image.shape[1], depth, near)
    _blend_where(image, mask, colour, alpha)


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray,
                  colour=BODY_COLOUR) -> None:
    """keypoints: (33, 2) pixels in mediapipe pose order; visible: (33,) bool."""
    for a, b in POSE_CONNECTIONS:
        if a < len(keypoints) and b < len(keypoints) and visible[a] and visible[b]:
            pa, pb = np.round(keypoints[[a, b]]).astype(int)
            cv2.line(image, tuple(int(v) for v in pa), tuple(int(v) for v in pb), colour, 2, cv2.LINE_AA)
    draw_points(image, keypoints[visible], JOINT_COLOUR, 3)


def draw_frame_result(frame_result, show_mask: bool = True) -> np.ndarray:
    """A BGR copy of the frame with every available result drawn on it."""
    image = frame_result.frame.image.copy()
    perception = frame_result.get("perception")
    face = frame_result.get("face")
    body = frame_result.get("body")
    if perception is not None and show_mask and perception.segmentation is not None:
        draw_segmentation(image, perception.segmentation)
    if body is not None:
        # parts at or behind the camera are not drawn
        draw_mesh_fill(image, body.vertex_pixels(), body.faces, BODY_COLOUR, 0.35,
                       depth=body.vertices[:, 2], near=NEAR_PLANE_M)
        draw_skeleton(image, body.keypoints_2d, body.keypoint_visible)
    elif perception is not None and perception.pose_landmarks is not None:
        vis = perception.pose_visibility if perception.pose_visibility is not None else np.ones(33)
        draw_skeleton(image, perception.pose_landmarks[:, :2], vis > 0.5)
    if face is not None:
        _draw_wireframe_translucent(image, face.vertices_image[:, :2], face.triangles, 0.45)
        draw_points(image, face.landmarks_2d, FACE_COLOUR, 2)
    elif perception is not None and perception.face_landmarks is not None:
        draw_points(image, perception.face_landmarks[:, :2], FACE_COLOUR, 1)
    return image


def _draw_wireframe_translucent(image: np.ndarray, vertices_2d: np.ndarray, triangles: np.ndarray,
                                alpha: float) -> None:
    """A wireframe at `alpha` opacity, so the face underneath stays readable: drawn on a copy
    of the mesh's bounding box only (the whole frame would cost a copy and a blend of it)."""
    h, w = image.shape[:2]
    finite = vertices_2d[np.isfinite(vertices_2d).all(axis=1)]
    if len(finite) == 0:
        return
    x0, y0 = np.clip(np.floor(finite.min(axis=0)).astype(int) - 2, 0, [w, h])
    x1, y1 = np.clip(np.ceil(finite.max(axis=0)).astype(int) + 3, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    layer = roi.copy()
    draw_mesh_wireframe(layer, vertices_2d - np.array([x0, y0], vertices_2d.dtype), triangles,
                        max_triangles=FACE_WIRE_TRIANGLES)
    cv2.addWeighted(layer, alpha, roi, 1.0 - alpha, 0, dst=roi)


def draw_hud(image: np.ndarray, lines: list[str]) -> None:
    """Small white-on-shadow text block in the top-left corner, in place."""
    y = 18
    for line in lines:
        cv2.putText(image, line, (9, y + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        y += 17


def volume_strip(volume, height: int) -> np.ndarray | None:
    """The volume views side by side (colour over normal), `height` rows: each view drawn
    at its output size with a smooth outline (engine.render.volume_image), not scaled up
    from the lattice."""
    from engine.render.volume_image import volume_images

    if volume is None or len(volume.color) == 0:
        return None
    size = max(1, height // 2)
    colour, normal = zip(*(volume_images(volume, i, size) for i in range(len(volume.color))))
    strip = np.concatenate([np.concatenate(colour, axis=1), np.concatenate(normal, axis=1)], axis=0)
    if strip.shape[0] != height:  # an odd height: one more row
        strip = cv2.resize(strip, (strip.shape[1], height), interpolation=cv2.INTER_LINEAR)
    return strip
