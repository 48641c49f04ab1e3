"""The fitted 3D face of one frame (both back-ends produce this)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.stage_protocol import jsonable


@dataclass(frozen=True)
class FaceResult:
    """A fitted morphable face.

    vertices_image: (V, 3) float32; x, y image pixels, z pixels (larger = farther).
    vertices_camera: (V, 3) float32; camera space (x right, y down, z forward), metres.
    triangles: (F, 3) int32 indices into the vertices.
    landmarks_2d: (68, 2) float32 image pixels, the iBUG-68 points of the fitted model.
    pose_deg: (3,) float32 yaw, pitch, roll in degrees, the same convention for every back-end
        (3DDFA_V2's; R = Rz(roll) Ry(-yaw) Rx(pitch) in the BFM frame), seen in the image:
        yaw > 0 when the subject turns to their own right (the nose moves to image left),
        pitch > 0 when they look down (the nose moves down), roll > 0 when the head tilts
        towards their own right shoulder (counter-clockwise in the image: the top of the
        head moves to image left). 0, 0, 0: facing the camera. See docs/CONVENTIONS.md.
    identity: (K,) float32 identity coefficients (frozen after accumulation).
    expression: (E,) float32 expression coefficients (52 ARKit units for Anny, 10 for BFM).
    expression_names: E names, in the order of `expression`.
    fit_rmse_px: RMS pixel distance between the model's landmarks and the observed ones.
    backend: "anny" (offline default), "bfm" (offline fit of the installed BFM) or "tddfa".
    vertex_colours: (V, 3) uint8 BGR, the person's colours sampled from the frames
        (engine.mesh_colours), or None.
    """

    vertices_image: np.ndarray
    vertices_camera: np.ndarray
    triangles: np.ndarray
    landmarks_2d: np.ndarray
    pose_deg: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    expression_names: tuple[str, ...]
    fit_rmse_px: float
    backend: str
    vertex_colours: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "landmarks_2d": jsonable(self.landmarks_2d, 1),
            "pose_deg": jsonable(self.pose_deg, 2),
            "expression": jsonable(self.expression, 3),
            # name -> value, so a reader need not know the back-end's basis order
            "expressions": {name: round(float(v), 3) for name, v in zip(self.expression_names, self.expression)},
            "fit_rmse_px": round(float(self.fit_rmse_px), 3),
        }
