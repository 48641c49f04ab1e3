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


def thick_line_quads(points: np.ndarray, edges: np.ndarray, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Segments as quads of constant width (core-profile GL has no wide lines everywhere).

    points: (N, 2) float32 pixels; edges: (E, 2) indices; half_width in the same pixels.
    Returns (4E, 2) float32 quad corners and (2E, 3) uint32 triangles.
    """
    p = np.asarray(points, np.float32)[:, :2]
    a, b = p[edges[:, 0]], p[edges[:, 1]]
    direction = b - a
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    direction = np.divide(direction, length, out=np.zeros_like(direction), where=length > 0)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1) * half_width
    along = direction * half_width  # extend the ends so joints between segments close up
    corners = np.stack([a - along + normal, a - along - normal, b + along + normal, b + along - normal], axis=1)
    base = (np.arange(len(edges), dtype=np.uint32) * 4)[:, None]
    triangles = np.concatenate([base + np.array([0, 1, 2], np.uint32), base + np.array([2, 1, 3], np.uint32)])
    return corners.reshape(-1, 2), triangles
