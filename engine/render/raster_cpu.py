"""A small CPU z-buffer rasteriser (numba) with Lambert shading and per-vertex colour.

For headless checks and synthetic test images (e.g. renders of the Anny head that
mediapipe is run on), not for the live viewport (that is OpenGL).

Conventions: vertices in image space, (V, 3) float32: x, y pixels (x right, y down, pixel
centres at integer coordinates), z a depth where smaller is nearer. Barycentrics are
screen-space (affine), which is exact for orthographic projection and close enough for
faces far from a pinhole camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Raster:
    """Per-pixel visibility of a mesh.

    triangle_id: (H, W) int32, index of the visible triangle, -1 where none.
    barycentric: (H, W, 3) float32, weights of the triangle's three vertices (0 where none).
    depth: (H, W) float32, interpolated z of the visible surface, +inf where none.
    """

    triangle_id: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray


@numba.njit(cache=True, nogil=True, inline="always")
def _pixel_box(x0, y0, x1, y1, x2, y2, h, w):  # pragma: no cover - compiled
    """Signed doubled area and the clipped pixel bounding box of one screen triangle."""
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    xmin = max(int(np.ceil(min(x0, x1, x2))), 0)
    xmax = min(int(np.floor(max(x0, x1, x2))), w - 1)
    ymin = max(int(np.ceil(min(y0, y1, y2))), 0)
    ymax = min(int(np.floor(max(y0, y1, y2))), h - 1)
    return area, xmin, xmax, ymin, ymax


@numba.njit(cache=True, nogil=True)
def _raster_kernel(verts, tris, tri_id, bary, depth):  # pragma: no cover - compiled
    h, w = depth.shape
    for f in range(tris.shape[0]):
        i0, i1, i2 = tris[f, 0], tris[f, 1], tris[f, 2]
        x0, y0, z0 = verts[i0, 0], verts[i0, 1], verts[i0, 2]
        x1, y1, z1 = verts[i1, 0], verts[i1, 1], verts[i1, 2]
        x2, y2, z2 = verts[i2, 0], verts[i2, 1], verts[i2, 2]
        area, xmin, xmax, ymin, ymax = _pixel_box(x0, y0, x1, y1, x2, y2, h, w)
        if abs(area) < 1e-12:
            continue
        inv = 1.0 / area
        for py in range(ymin, ymax + 1):
            for px in range(xmin, xmax + 1):
                # Edge functions; both windings are drawn (no back-face culling), the
                # z-buffer decides.
                w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv
                w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv
                w2 = 1.0 - w0 - w1
                if w0 < 0 or w1 < 0 or w2 < 0:
                    continue
                z = w0 * z0 + w1 * z1 + w2 * z2
                if z < depth[py, px]:
                    depth[py, px] = z
                    tri_id[py, px] = f
                    bary[py, px, 0] = w0
                    bary[py, px, 1] = w1
                    bary[py, px, 2] = w2


@numba.njit(cache=True, nogil=True)
def _coverage_kernel(verts, tris, depth, near, mask):  # pragma: no cover - compiled
    h, w = mask.shape
    for f in range(tris.shape[0]):
        if depth[tris[f, 0]] <= near or depth[tris[f, 1]] <= near or depth[tris[f, 2]] <= near:
            continue
        x0, y0 = verts[tris[f, 0], 0], verts[tris[f, 0], 1]
        x1, y1 = verts[tris[f, 1], 0], verts[tris[f, 1], 1]
        x2, y2 = verts[tris[f, 2], 0], verts[tris[f, 2], 1]
        area, xmin, xmax, ymin, ymax = _pixel_box(x0, y0, x1, y1, x2, y2, h, w)
        if abs(area) < 1e-12:
            continue
        inv = 1.0 / area
        for py in range(ymin, ymax + 1):
            for px in range(xmin, xmax + 1):
                if mask[py, px]:
                    continue
                w0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) * inv
                w1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) * inv
                if w0 >= 0 and w1 >= 0 and w0 + w1 <= 1.0:
                    mask[py, px] = 255


def coverage(vertices_2d: np.ndarray, triangles: np.ndarray, height: int, width: int,
             depth: np.ndarray | None = None, near: float = 0.0) -> np.ndarray:
    """(H, W) uint8 mask, 255 where any triangle covers the pixel centre: a mesh's
    silhouette without the depth and barycentrics of `rasterize` (several times cheaper).
    With `depth` (V,), triangles with a corner at or nearer than `near` are left out (in the
    kernel: selecting them in numpy first cost as much as the raster)."""
    mask = np.zeros((height, width), np.uint8)
    if depth is None:
        depth, near = np.ones(len(vertices_2d), np.float32), 0.0
    _coverage_kernel(np.ascontiguousarray(vertices_2d[:, :2], np.float32),
                     np.ascontiguousarray(triangles, np.int32),
                     np.ascontiguousarray(depth, np.float32), float(near), mask)
    return mask


def rasterize(vertices_image: np.ndarray, triangles: np.ndarray, height: int, width: int) -> Raster:
    """Z-buffer the mesh. vertices_image: (V, 3) float32 pixels + depth; triangles: (F, 3) int."""
    tri_id = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 3), np.float32)
    depth = np.full((height, width), np.inf, np.float32)
    _raster_kernel(np.ascontiguousarray(vertices_image, np.float32),
                   np.ascontiguousarray(triangles, np.int32), tri_id, bary, depth)
    return Raster(tri_id, bary, depth)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit area-weighted vertex normals of a mesh given in any 3D frame."""
    v = vertices.astype(np.float64)
    fn = np.cross(v[triangles[:, 1]] - v[triangles[:, 0]], v[triangles[:, 2]] - v[triangles[:, 0]])
    n = np.zeros_like(v)
    for corner in range(3):
        np.add.at(n, triangles[:, corner], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


def interpolate(raster: Raster, triangles: np.ndarray, attribute: np.ndarray) -> np.ndarray:
    """Per-pixel barycentric interpolation of a per-vertex attribute (V, C) -> (H, W, C) float32
    (zeros where no triangle is visible)."""
    hit = raster.triangle_id >= 0
    out = np.zeros(raster.triangle_id.shape + (attribute.shape[1],), np.float32)
    corners = triangles[raster.triangle_id[hit]]  # (P, 3)
    w = raster.barycentric[hit]  # (P, 3)
    out[hit] = np.einsum("pk,pkc->pc", w, attribute[corners])
    return out


def shade_lambert(vertices_camera: np.ndarray, vertices_image: np.ndarray, triangles: np.ndarray,
                  colours: np.ndarray, height: int, width: int,
                  light_dir: tuple[float, float, float] = (0.3, -0.4, -1.0),
                  ambient: float = 0.35, background: tuple[int, int, int] = (40, 40, 40)) -> tuple[np.ndarray, Raster]:
    """Render a Lambert-shaded, per-vertex-coloured mesh.

    vertices_camera: (V, 3) camera space (x right, y down, z forward), for the normals.
    vertices_image: (V, 3) pixels + depth (smaller = nearer), for rasterisation.
    colours: (V, 3) float BGR in [0, 1]. light_dir: direction *towards* the light, camera space.
    Returns the (H, W, 3) uint8 BGR image and the raster.
    """
    raster = rasterize(vertices_image, triangles, height, width)
    normals = vertex_normals(vertices_camera, triangles)
    light = np.asarray(light_dir, np.float32)
    light /= np.linalg.norm(light)
    # Normals may point either way (mixed windings): light the side facing the camera.
    view_sign = -np.sign(np.sum(normals * vertices_camera, axis=1, keepdims=True) + 1e-12)
    diffuse = np.clip((normals * view_sign) @ light, 0.0, 1.0)[:, None]
    lit = colours * (ambient + (1.0 - ambient) * diffuse)
    pix = interpolate(raster, triangles, lit.astype(np.float32))
    img = np.empty((height, width, 3), np.uint8)
    img[:] = np.asarray(background, np.uint8)
    hit = raster.triangle_id >= 0
    img[hit] = np.clip(pix[hit] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return img, raster
