"""Small array operations on lattice images shared by the volume's renderer and the views
drawn from it (numpy and OpenCV only)."""
from __future__ import annotations

import cv2
import numpy as np

SPREAD_RINGS = 2  # bilinear interpolation reads one neighbour; two keep the edge clean


def spread(values: np.ndarray, valid: np.ndarray, rings: int = SPREAD_RINGS) -> np.ndarray:
    """`values` (S, S[, C]) float32 with the invalid pixels within `rings` of a valid one set to
    the mean of their valid 3x3 neighbours, ring after ring (the valid ones unchanged)."""
    out = np.where(valid[..., None] if values.ndim == 3 else valid, values, 0).astype(np.float32)
    have = valid.astype(np.float32)
    for _ in range(rings):
        total = cv2.boxFilter(out * (have[..., None] if out.ndim == 3 else have), -1, (3, 3),
                              normalize=False, borderType=cv2.BORDER_CONSTANT)
        count = cv2.boxFilter(have, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        new = (have == 0) & (count > 0)
        if not new.any():
            break
        denom = np.maximum(count, 1.0)
        out[new] = (total / (denom[..., None] if out.ndim == 3 else denom))[new]
        have[new] = 1.0
    return out


__all__ = ["SPREAD_RINGS", "spread"]
