"""Analytic occupancy fields for testing and benchmarking localisation and rendering.

Every field maps (N, 3) float32 points in the cube [-1, 1]^3 (x right, y down, z away
from the camera; the body stands along y with its head at negative y) to (N,) float32
occupancy in [0, 1]: a sigmoid of the negated signed distance, sharp over about one
finest cell (width `eps`, cube units), like a trained network's soft boundary.
Signed distances are combined with min (union) and max(a, -b) (subtraction).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

SdfFn = Callable[[torch.Tensor], torch.Tensor]
Blob = tuple[tuple[float, float, float], float]  # (centre, radius), cube units

EPS_257 = 2.0 / 257  # one finest cell at 257^3


def occupancy_from_sdf(sdf: SdfFn, eps: float = EPS_257) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn an SDF (N, 3) -> (N,) (negative inside, cube units) into occupancy sigmoid(-d / eps)."""

    def f(points: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-sdf(points) / eps)

    return f


def sphere_sdf(points: torch.Tensor, centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
               radius: float = 0.35) -> torch.Tensor:
    """Exact SDF of a ball. points: (N, 3); returns (N,)."""
    c = torch.as_tensor(centre, dtype=points.dtype, device=points.device)
    return (points - c).norm(dim=1) - radius


def ellipsoid_sdf(points: torch.Tensor, centre: tuple[float, float, float],
                  axes: tuple[float, float, float]) -> torch.Tensor:
    """Approximate SDF of an axis-aligned ellipsoid (the usual k0 (k0 - 1) / k1 bound);
    its zero set is exact, which is all the occupancy threshold needs."""
    c = torch.as_tensor(centre, dtype=points.dtype, device=points.device)
    a = torch.as_tensor(axes, dtype=points.dtype, device=points.device)
    q = points - c
    k0 = (q / a).norm(dim=1)
    k1 = (q / (a * a)).norm(dim=1).clamp_min(1e-9)
    return k0 * (k0 - 1.0) / k1


def capsule_sdf(points: torch.Tensor, a: tuple[float, float, float], b: tuple[float, float, float],
                radius: float) -> torch.Tensor:
    """Exact SDF of a capsule (segment a-b swept by a ball of `radius`)."""
    pa = points - torch.as_tensor(a, dtype=points.dtype, device=points.device)
    ba = torch.as_tensor(b, dtype=points.dtype, device=points.device) - torch.as_tensor(a, dtype=points.dtype, device=points.device)
    h = ((pa @ ba) / (ba @ ba)).clamp(0.0, 1.0)
    return (pa - h[:, None] * ba).norm(dim=1) - radius


def torus_sdf(points: torch.Tensor, centre: tuple[float, float, float], major: float, minor: float,
              axis: int = 2) -> torch.Tensor:
    """Exact SDF of a torus whose hole runs along `axis` (0 = x, 1 = y, 2 = z)."""
    q = points - torch.as_tensor(centre, dtype=points.dtype, device=points.device)
    plane = [a for a in range(3) if a != axis]
    ring = q[:, plane].norm(dim=1) - major
    return torch.sqrt(ring * ring + q[:, axis] * q[:, axis]) - minor


def sphere_field(radius: float = 0.35, eps: float = EPS_257) -> Callable[[torch.Tensor], torch.Tensor]:
    return occupancy_from_sdf(lambda p: sphere_sdf(p, radius=radius), eps)


# Thin limbs are 2-3 finest cells wide at 257^3 (one cell = 2/257 = 0.0078 cube units).
THIN_RADIUS = 1.25 * EPS_257


def body_sdf(points: torch.Tensor) -> torch.Tensor:
    """A standing figure: ellipsoid torso, head, arms and legs, two thin 'fingers'
    (capsules 2.5 cells wide), a thin 'strap' loop (torus handle) and a hole through
    the torso along z. y points down, so the head is at y < 0."""
    parts = [
        ellipsoid_sdf(points, (0.0, -0.05, 0.0), (0.22, 0.32, 0.13)),   # torso
        ellipsoid_sdf(points, (0.0, -0.55, 0.0), (0.11, 0.14, 0.12)),   # head
        ellipsoid_sdf(points, (-0.33, -0.12, 0.0), (0.16, 0.05, 0.05)),  # left upper arm
        ellipsoid_sdf(points, (0.33, -0.12, 0.0), (0.16, 0.05, 0.05)),   # right upper arm
        ellipsoid_sdf(points, (-0.10, 0.55, 0.0), (0.07, 0.33, 0.07)),   # left leg
        ellipsoid_sdf(points, (0.10, 0.55, 0.0), (0.07, 0.33, 0.07)),    # right leg
        capsule_sdf(points, (-0.46, -0.12, 0.0), (-0.78, -0.30, 0.05), THIN_RADIUS),  # thin finger
        capsule_sdf(points, (0.46, -0.12, 0.0), (0.80, 0.05, -0.08), THIN_RADIUS),    # thin finger
        torus_sdf(points, (0.0, -0.22, 0.11), 0.06, THIN_RADIUS, axis=0),  # thin strap loop on the chest
    ]
    body = torch.stack(parts).min(dim=0).values
    hole = capsule_sdf(points, (0.0, 0.05, -0.5), (0.0, 0.05, 0.5), 0.05)  # through the torso
    return torch.maximum(body, -hole)


def body_field(eps: float = EPS_257) -> Callable[[torch.Tensor], torch.Tensor]:
    return occupancy_from_sdf(body_sdf, eps)


def lattice17(i: float) -> float:
    """Coordinate of (fractional) index i of the 17-point level nested in the 257 lattice:
    its points are 16 finest cells = 0.1245 cube units apart."""
    return -1.0 + (32.0 * i + 1.0) / 257.0


# (centre, radius). Visible: a ball of radius >= half the 17-lattice diagonal (0.108)
# always contains a lattice point; smaller ones here are centred on one.
BLOBS_VISIBLE = (
    ((-0.5, -0.5, 0.0), 0.15),
    ((0.5, -0.45, 0.2), 0.11),
    ((lattice17(4), lattice17(12), lattice17(6)), 0.05),
    ((0.0, 0.0, 0.0), 0.02),  # (0, 0, 0) is a 17-lattice point
)
# Hidden: smaller than the coarse spacing and centred between 17-lattice points, far from
# other surfaces, so no level ever queries them. Coarse-to-fine cannot see these.
BLOBS_HIDDEN = (
    ((lattice17(10.5), lattice17(5.5), lattice17(13.5)), 0.035),
    ((lattice17(12.5), lattice17(12.5), lattice17(12.5)), 0.02),
)
BLOBS = BLOBS_VISIBLE + BLOBS_HIDDEN


def blobs_sdf(points: torch.Tensor, blobs: tuple[Blob, ...] = BLOBS) -> torch.Tensor:
    return torch.stack([sphere_sdf(points, c, r) for c, r in blobs]).min(dim=0).values


def blobs_field(blobs: tuple[Blob, ...] = BLOBS, eps: float = EPS_257) -> Callable[[torch.Tensor], torch.Tensor]:
    return occupancy_from_sdf(lambda p: blobs_sdf(p, blobs), eps)


@dataclass
class GridSdf:
    """An SDF sampled on a regular grid over the cube and read back trilinearly.

    sdf: (G, G, G) float32 tensor indexed [x, y, z] at the cell centres -1 + (2i + 1) / G,
    cube units, negative inside. Points outside the grid read the border value."""

    sdf: torch.Tensor

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        # grid_sample wants (z, y, x) order for a [x, y, z] volume stored as D=x, H=y, W=z,
        # and align_corners=False maps -1/+1 to the outer cell faces = our cell centres layout.
        grid = points[:, [2, 1, 0]].reshape(1, -1, 1, 1, 3).to(self.sdf.dtype)
        vol = self.sdf.to(points.device)[None, None]
        out = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.reshape(-1)


def mesh_sdf_grid(vertices: np.ndarray, faces: np.ndarray, resolution: int = 129, band: int = 3) -> GridSdf:
    """Signed distance of a closed triangle mesh on a grid over the cube.

    vertices: (V, 3) float cube coordinates; faces: (F, 3) int. Inside/outside comes from
    ray parity along x, y and z in every grid column, majority-voted so that small holes in
    a not-quite-watertight mesh do not leak. Within `band` cells of the surface the
    distance is exact (closest point on the triangles, numba); farther out it comes from
    Euclidean distance transforms of the inside/outside voxel sets (scipy), which only
    matters for how fast the occupancy saturates. Cube units, negative inside.
    """
    from scipy import ndimage

    inside = np.zeros((resolution,) * 3, dtype=np.int8)
    for axis in range(3):
        inside += _parity_inside(vertices, faces, resolution, axis)
    occ = inside >= 2
    cell = 2.0 / resolution
    far = np.where(occ, ndimage.distance_transform_edt(occ), ndimage.distance_transform_edt(~occ)) * cell
    near = band_distance(np.ascontiguousarray(vertices, dtype=np.float64),
                         np.ascontiguousarray(faces, dtype=np.int64), resolution, band)
    dist = np.where(np.isfinite(near), near, np.maximum(far, band * cell))
    sdf = np.where(occ, -dist, dist).astype(np.float32)
    return GridSdf(torch.from_numpy(sdf))


@numba.njit(cache=True)
def _closest_on_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point to p on triangle abc (Voronoi-region test, Ericson's Real-Time
    Collision Detection, 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab @ ap, ac @ ap
    if d1 <= 0.0 and d2 <= 0.0:
        return a
    bp = p - b
    d3, d4 = ab @ bp, ac @ bp
    if d3 >= 0.0 and d4 <= d3:
        return b
    vc = d1 * d4 - d3 * d2
    if vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
        return a + ab * (d1 / (d1 - d3))
    cp = p - c
    d5, d6 = ab @ cp, ac @ cp
    if d6 >= 0.0 and d5 <= d6:
        return c
    vb = d5 * d2 - d1 * d6
    if vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
        return a + ac * (d2 / (d2 - d6))
    va = d3 * d6 - d5 * d4
    if va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
        return b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))
    denom = 1.0 / (va + vb + vc)
    return a + ab * (vb * denom) + ac * (vc * denom)


@numba.njit(cache=True)
def band_distance(verts: np.ndarray, faces: np.ndarray, resolution: int, band: int) -> np.ndarray:
    """(R, R, R) float64 [x, y, z]: exact unsigned distance to the mesh at the cell centres
    within `band` cells of a triangle's bounding box, inf elsewhere."""
    r = resolution
    out = np.full((r, r, r), np.inf)
    p = np.empty(3)
    for f in range(faces.shape[0]):
        a, b, c = verts[faces[f, 0]], verts[faces[f, 1]], verts[faces[f, 2]]
        lo = np.empty(3, dtype=np.int64)
        hi = np.empty(3, dtype=np.int64)
        for d in range(3):
            mn = min(a[d], b[d], c[d])
            mx = max(a[d], b[d], c[d])
            lo[d] = max(int(np.floor((mn + 1.0) * r / 2.0 - 0.5)) - band, 0)
            hi[d] = min(int(np.ceil((mx + 1.0) * r / 2.0 - 0.5)) + band, r - 1)
        for i in range(lo[0], hi[0] + 1):
            p[0] = -1.0 + (2.0 * i + 1.0) / r
            for j in range(lo[1], hi[1] + 1):
                p[1] = -1.0 + (2.0 * j + 1.0) / r
                for k in range(lo[2], hi[2] + 1):
                    p[2] = -1.0 + (2.0 * k + 1.0) / r
                    q = _closest_on_triangle(p, a, b, c)
                    dd = np.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2)
                    if dd < out[i, j, k]:
                        out[i, j, k] = dd
    return out


def _parity_inside(vertices: np.ndarray, faces: np.ndarray, resolution: int, axis: int) -> np.ndarray:
    """(R, R, R) bool [x, y, z]: inside by crossing parity along `axis`, in numba."""
    perm = [a for a in range(3) if a != axis] + [axis]
    v = np.ascontiguousarray(vertices[:, perm], dtype=np.float64)
    vol = parity_fill(v, np.ascontiguousarray(faces, dtype=np.int64), resolution)  # [u, v, w=axis]
    inv = np.argsort(perm)
    return np.transpose(vol, inv).astype(np.int8)


@numba.njit(cache=True)
def parity_fill(verts: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """Inside test by ray parity along the third axis.

    verts: (V, 3) float64 with the ray axis last; faces: (F, 3) int64.
    Returns (R, R, R) bool [u, v, w]: odd number of surface crossings before the cell centre.
    """
    r = resolution
    toggles = np.zeros((r, r, r + 1), dtype=np.uint8)
    # A tiny irrational shift keeps column centres off shared edges and vertices, so that
    # no crossing is counted twice.
    du, dv = 1.4142135e-7, 1.7320508e-7
    for f in range(faces.shape[0]):
        a, b, c = verts[faces[f, 0]], verts[faces[f, 1]], verts[faces[f, 2]]
        umin = min(a[0], b[0], c[0])
        umax = max(a[0], b[0], c[0])
        vmin = min(a[1], b[1], c[1])
        vmax = max(a[1], b[1], c[1])
        i0 = max(int(np.floor((umin + 1.0) * r / 2.0 - 0.5)), 0)
        i1 = min(int(np.ceil((umax + 1.0) * r / 2.0 - 0.5)), r - 1)
        j0 = max(int(np.floor((vmin + 1.0) * r / 2.0 - 0.5)), 0)
        j1 = min(int(np.ceil((vmax + 1.0) * r / 2.0 - 0.5)), r - 1)
        det = (b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])
        if det == 0.0:
            continue
        for i in range(i0, i1 + 1):
            pu = -1.0 + (2.0 * i + 1.0) / r + du
            for j in range(j0, j1 + 1):
                pv = -1.0 + (2.0 * j + 1.0) / r + dv
                l1 = ((b[0] - pu) * (c[1] - pv) - (c[0] - pu) * (b[1] - pv)) / det
                l2 = ((c[0] - pu) * (a[1] - pv) - (a[0] - pu) * (c[1] - pv)) / det
                l3 = 1.0 - l1 - l2
                if l1 < 0.0 or l2 < 0.0 or l3 < 0.0:
                    continue
                w = l1 * a[2] + l2 * b[2] + l3 * c[2]
                k = int(np.ceil((w + 1.0) * r / 2.0 - 0.5))  # first cell centre beyond w
                k = min(max(k, 0), r)
                toggles[i, j, k] ^= 1
    out = np.zeros((r, r, r), dtype=np.bool_)
    for i in range(r):
        for j in range(r):
            acc = 0
            for k in range(r):
                acc ^= toggles[i, j, k]
                out[i, j, k] = acc == 1
    return out


def mesh_field(vertices: np.ndarray, faces: np.ndarray, resolution: int = 129,
               eps: float = EPS_257) -> Callable[[torch.Tensor], torch.Tensor]:
    """Occupancy of a mesh through its grid SDF (see mesh_sdf_grid)."""
    return occupancy_from_sdf(mesh_sdf_grid(vertices, faces, resolution), eps)


def fit_to_cube(vertices: np.ndarray, margin: float = 0.1, flip_y: bool = True) -> np.ndarray:
    """Scale and centre (V, 3) vertices so the longest side spans 2 - 2 margin cube units;
    flip_y turns a y-up model (Anny, metres) into the cube's y-down convention."""
    v = np.asarray(vertices, dtype=np.float64).copy()
    if flip_y:
        v[:, 1] *= -1.0
        v[:, 2] *= -1.0  # keep the frame right-handed (a 180 degree turn about x)
    lo, hi = v.min(axis=0), v.max(axis=0)
    scale = (2.0 - 2.0 * margin) / float(np.max(hi - lo))
    return (v - 0.5 * (lo + hi)) * scale


__all__ = [
    "EPS_257", "THIN_RADIUS", "BLOBS", "BLOBS_VISIBLE", "BLOBS_HIDDEN", "lattice17", "occupancy_from_sdf", "sphere_sdf", "ellipsoid_sdf",
    "capsule_sdf", "torus_sdf", "sphere_field", "body_sdf", "body_field", "blobs_sdf",
    "blobs_field", "GridSdf", "mesh_sdf_grid", "mesh_field", "fit_to_cube",
]
