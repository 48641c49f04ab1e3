"""Renders of a linear face with a known pose and expression (ground truth for tests and
for the correspondence tool). Scaled-orthographic camera, the same model the fitter uses:

    image_xy = scale · (R · X)[:2] + translation,   depth = (R · X)_z

X: model-frame points (x image-right, y down, z away; metres), R from
`engine.face.fit.rotation_matrix(yaw, pitch, roll)`, scale in pixels per metre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.render.raster_cpu import Raster, shade_lambert

# Shading needs camera-space points only for the view direction: put the head this far
# in front of the camera (metres) so the view rays are nearly parallel, as in the
# orthographic projection used for the pixels.
_SHADING_DISTANCE_M = 2.0


@dataclass(frozen=True)
class FaceRender:
    """image: (H, W, 3) uint8 BGR. vertices_image: (V, 3) float32 pixels + depth (metres).
    raster: per-pixel triangle id / barycentrics."""

    image: np.ndarray
    vertices_image: np.ndarray
    raster: Raster


def project_orthographic(points: np.ndarray, rotation: np.ndarray, scale: float,
                         translation: np.ndarray) -> np.ndarray:
    """(N, 3) model-frame points -> (N, 3) float32: x, y pixels and z depth in metres."""
    rotated = points @ np.asarray(rotation, np.float32).T
    out = np.empty_like(rotated, dtype=np.float32)
    out[:, :2] = scale * rotated[:, :2] + np.asarray(translation, np.float32)[:2]
    out[:, 2] = rotated[:, 2]
    return out


def render_mesh(vertices_model: np.ndarray, triangles: np.ndarray, colours: np.ndarray,
                rotation: np.ndarray, scale: float, translation: np.ndarray,
                height: int, width: int, background: tuple[int, int, int] = (60, 70, 80)) -> FaceRender:
    """Lambert render of model-frame vertices (V, 3) posed by (rotation, scale, translation)."""
    img_pts = project_orthographic(vertices_model, rotation, scale, translation)
    cam = vertices_model @ np.asarray(rotation, np.float32).T
    cam[:, 2] += _SHADING_DISTANCE_M
    image, raster = shade_lambert(cam, img_pts, triangles, colours, height, width, background=background)
    return FaceRender(image, img_pts, raster)
