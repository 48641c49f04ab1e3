"""Per-frame mesh helpers for drawing (vectorised numpy; no Python loops over vertices)."""
from __future__ import annotations

import numpy as np


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals.

    vertices: (V, 3) float32, any right-handed or left-handed frame (normals follow the
        triangle winding in that frame). faces: (F, 3) integer indices.
    Returns (V, 3) float32 unit normals; vertices used by no triangle get (0, 0, 0).
    """
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces, np.int64)
    # The cross product's length is twice the area, so the sum weights by area for free.
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    corner_index = f.ravel()
    normals = np.empty_like(v)
    for axis in range(3):
        # bincount is a fast scatter-add (np.add.at is ~10x slower).
        normals[:, axis] = np.bincount(corner_index, weights=np.repeat(face_n[:, axis], 3), minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def bbox_center(points: np.ndarray) -> np.ndarray:
    """(3,) float32 centre of the axis-aligned bounding box of (N, 3) points."""
    p = np.asarray(points, np.float32)
    return (0.5 * (p.min(axis=0) + p.max(axis=0))).astype(np.float32)
