"""The fitted body of one person in one frame (both back-ends produce this)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.stage_protocol import jsonable


@dataclass(frozen=True)
class BodyResult:
    """A posed body mesh.

    vertices: (V, 3) float32, camera space (x right, y down, z forward), metres.
    faces: (F, 3) int32 triangle indices.
    joints_3d: (J, 3) float32, camera space, metres.
    keypoints_2d: (K, 2) float32 image pixels: the model's keypoints, projected, in
        mediapipe pose order (33) so they compare with the observation one to one.
    keypoint_visible: (K,) bool, which keypoints were observed (used in fit_rmse_px).
    pose: (J, 3) float32 axis-angle per joint (model's own joint order).
    shape: (S,) float32 shape parameters.
    camera_focal_px: focal length of the perspective camera used, pixels.
    camera_center_px: (2,) principal point, pixels.
    translation: (3,) float32 root translation in camera space, metres.
    fit_rmse_px: RMS pixel distance between keypoints_2d and the visible observed landmarks.
    backend: "anny" (offline default), "hmr" or "pointhmr".
    pose, shape: empty for "pointhmr", which regresses vertices, not parameters.
    joints_2d: (J, 2) float32 pixels, joints_3d projected, or None.
    keypoints_3d: (K, 3) float32 camera space, metres (the model's mediapipe-order points), or None.
    vertex_colours: (V, 3) uint8 BGR, the person's colours sampled from the frames
        (engine.mesh_colours), or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    keypoint_visible: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    camera_focal_px: float
    camera_center_px: np.ndarray
    translation: np.ndarray
    fit_rmse_px: float
    backend: str
    joints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None
    vertex_colours: np.ndarray | None = None

    def vertex_pixels(self) -> np.ndarray:
        """(V, 2) float pixels of the camera-space vertices, with the fit's own camera."""
        z = np.maximum(self.vertices[:, 2:3], 1e-3)
        return self.vertices[:, :2] / z * self.camera_focal_px + np.asarray(self.camera_center_px)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "keypoints_2d": jsonable(self.keypoints_2d, 1),
            "fit_rmse_px": round(float(self.fit_rmse_px), 3),
            "shape": jsonable(self.shape, 3),
            "translation": jsonable(self.translation, 3),
        }
