"""Per-frame mesh helpers for drawing (vectorised numpy; no Python loops over vertices)."""
from __future__ import annotations

import numpy as np
from scipy import sparse


def incidence_matrix(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """(V, F) float32 sparse matrix with a 1 where vertex v is a corner of face f. Built once
    per topology; vertex_normals then sums face normals with one sparse product."""
    f = np.asarray(faces, np.int64)
    rows = f.ravel()
    cols = np.repeat(np.arange(len(f)), 3)
    return sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(num_vertices, len(f)))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray,
                   incidence: sparse.csr_matrix | None = None) -> np.ndarray:
    """Area-weighted vertex normals.

    vertices: (V, 3) float32 in any frame (normals follow the triangle winding in that
        frame). faces: (F, 3) integer indices. incidence: incidence_matrix(faces, V), when
        the caller keeps one for a fixed topology (faster).
    Returns (V, 3) float32 unit normals; vertices used by no triangle get (0, 0, 0).
    """
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces)
    a = v[f[:, 0]]
    e1, e2 = v[f[:, 1]] - a, v[f[:, 2]] - a
    # The cross product's length is twice the area, so the sum weights by area for free.
    # Written out: np.cross is several times slower on (F, 3) float32.
    face_n = np.empty_like(e1)
    face_n[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
    face_n[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
    face_n[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    if incidence is None:
        incidence = incidence_matrix(f, len(v))
    normals = np.asarray(incidence @ face_n, np.float32)
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


def unique_edges(triangles: np.ndarray) -> np.ndarray:
    """(E, 2) int32: each edge of (F, 3) `triangles` once (a closed mesh has ~1.5 F edges, a
    wireframe drawn per triangle 3 F), smaller index first."""
    tris = np.asarray(triangles, np.int64)
    edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0).astype(np.int32)
