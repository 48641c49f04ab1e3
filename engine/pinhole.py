"""Pinhole camera shared by the stages: camera space is x right, y down, z forward (metres)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of the input camera in pixels. Principal point at the image centre by default."""

    width: int
    height: int
    focal_px: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = 60.0) -> "PinholeCamera":
        """Webcams are ~55-78 deg horizontally; 60 deg is the default guess for unknown ones."""
        focal = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
        return cls(width, height, focal, width / 2.0, height / 2.0)

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float32 K."""
        return np.array([[self.focal_px, 0, self.cx], [0, self.focal_px, self.cy], [0, 0, 1]], np.float32)

    def project(self, points: np.ndarray) -> np.ndarray:
        """points: (N, 3) camera space, metres -> (N, 2) float32 pixels."""
        z = np.maximum(points[:, 2:3], 1e-6)
        return (points[:, :2] / z * self.focal_px + np.array([self.cx, self.cy])).astype(np.float32)
