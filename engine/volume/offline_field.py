"""The offline volumetric field: occupancy and colour built per frame from the body fit,
the person's silhouette and the frame itself (no trained network, nothing downloaded).

Frames. Camera space is x right, y down, z forward, metres (engine.pinhole). The field's
cube [-1, 1]^3 (engine.volume.render: x right, y down, z away from the camera) is the axis-
aligned box `CubeMap` around the person: X_camera = centre + half * p_cube. The body grid
is laid out over the cube; the silhouette, the per-ray maps of the body (`ray_maps`) and
the colour use the real pinhole projection of each point.

Occupancy = sigmoid(-d / eps) of a signed distance d in metres (negative inside):
    d = max(min(d_body - dilate, d_hull), d_silhouette)   (min/max rounded over blend_m)
  d_body       the posed body: voxelised by ray parity on a G^3 grid, blurred by a
               Gaussian (sigma voxels), read back trilinearly and turned into a distance
               with the blurred-plane relation b = Phi(-d / sigma) (valid within ~3 sigma);
  d_hull       a slab around the depth of the nearby body, as thick as a fraction of that
               body, only off the body's own footprint (where the body grid holds it: a
               limb the grid loses is filled by the slab) and within `hull_reach_m` of it:
               what the mask shows but the body lacks (hair, loose clothing, fit errors,
               a held sign, a hugged person); the mask is first cut to the regions the body
               projects into (engine.volume.person_mask), so someone apart is never filled;
  d_silhouette the person mask's 2-D signed distance (pixels) at the point's projection,
               scaled to metres at the point's depth: the silhouette cone carves everything
               (and so does the frame's edge: what the camera did not see is left out).
Colour: the frame at the point's projection for points on the camera-facing side; towards
the back, a mask-weighted blur of the frame, darkened (the unseen side is a plausible fill,
not a reconstruction).

Per frame the build costs one parity fill and one Gaussian blur of a G^3 grid plus a few
2-D distance transforms on the person crop; a query is three grid_samples.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numba
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from engine.body.result import BodyResult
from engine.volume.fields import parity_fill
from engine.volume.person_mask import person_mask

log = logging.getLogger(__name__)

_NEAR_M = 0.05  # points closer to the camera than this are never inside (no projection)
_BLUR_CLAMP = 3.0  # blurred indicator -> distance is trusted within +-3 sigma
# Ray-map channels (see ray_maps).
ZMID, HALF, D_FOOT, ZFRONT, THICK = range(5)


@dataclass(frozen=True)
class OfflineFieldSettings:
    """grid: body voxel grid per side (64: ~3 cm voxels for a standing adult).
    blur_vox: Gaussian sigma (voxels) that smooths the voxelised body.
    dilate_m: allowance around the body for clothing and hair, metres.
    hull_reach_m: how far off the body's footprint the silhouette hull may extend, metres:
        about an arm's length, so a held object or a hugged person is filled, while a mask
        that bleeds into the background stops there.
    hull_spread_m: the scale over which the body's depth and thickness are carried off its
        footprint for the hull (a Gaussian of half this); farther out, the nearest ones.
    hull_thickness: the hull slab's half thickness as a fraction of the nearby body's.
    min_half_thickness_m: the thinnest hull slab (half thickness), metres.
    margin: cube side / the person's largest extent.
    mask_threshold: segmentation probability that counts as the person.
    blend_m: width over which the creases between body, hull and silhouette are rounded
        (sharp intersections alias into stripes in the rendered normals).
    eps_cells: occupancy sigmoid width in finest render cells (~1: sharp yet smooth normals).
    back_darken: brightness of the unseen side's fill relative to the blurred frame.
    fill_size: the blurred back fill is computed on a crop scaled to this many pixels."""

    grid: int = 64
    blur_vox: float = 1.0
    dilate_m: float = 0.02
    hull_reach_m: float = 0.5
    hull_spread_m: float = 0.15
    hull_thickness: float = 0.8
    min_half_thickness_m: float = 0.03
    margin: float = 1.15
    mask_threshold: float = 0.5
    blend_m: float = 0.03
    eps_cells: float = 1.0
    back_darken: float = 0.75
    fill_size: int = 48


@dataclass(frozen=True)
class CubeMap:
    """The field cube in camera space: X = centre + half * p (axes aligned with the camera).

    centre: (3,) float64 camera space, metres. half: half the cube side, metres."""

    centre: np.ndarray
    half: float

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) cube points -> (N, 3) camera-space metres (same dtype/device)."""
        c = torch.as_tensor(self.centre, dtype=points.dtype, device=points.device)
        return points * self.half + c

    def to_cube(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera-space metres -> (N, 3) float64 cube coordinates."""
        return (np.asarray(points, np.float64) - self.centre) / self.half


@dataclass(frozen=True)
class Pinhole:
    """The body fit's camera: pixels = f * (x, y) / z + (cx, cy)."""

    focal_px: float
    cx: float
    cy: float

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3) camera points -> u, v pixels (N,) and the clamped depth z (N,)."""
        z = x[:, 2].clamp_min(_NEAR_M)
        return x[:, 0] / z * self.focal_px + self.cx, x[:, 1] / z * self.focal_px + self.cy, z


# ------------------------------------------------------------------ the cube around the person

def cube_for_person(vertices: np.ndarray, camera: Pinhole, image_size: tuple[int, int],
                    mask: np.ndarray | None, margin: float = 1.15, reach_m: float = 0.2) -> CubeMap | None:
    """The cube around the visible body and its silhouette.

    vertices: (V, 3) camera space, metres; image_size: (H, W); mask: (H, W) bool or None.
    The body's box is clipped to the frame's view at the body's far depth (the field is
    carved at the frame's edges), so a webcam close-up does not spend the cube on legs below
    the frame; the mask's bounding box, back-projected at the body's median depth, widens
    the box where hair, clothes or what the person holds reach past the body, by at most
    `reach_m` (the hull never fills farther from the body). Give it the person's own part of
    the mask (engine.volume.person_mask): someone standing apart must not grow the cube.
    Returns None when no vertex is in front of the camera and in view.
    """
    h, w = image_size
    v = np.asarray(vertices, np.float64)
    v = v[v[:, 2] > _NEAR_M]
    if len(v) == 0:
        return None
    u = v[:, 0] / v[:, 2] * camera.focal_px + camera.cx
    r = v[:, 1] / v[:, 2] * camera.focal_px + camera.cy
    if not ((u > -0.5) & (u < w - 0.5) & (r > -0.5) & (r < h - 0.5)).any():
        return None
    lo, hi = v.min(axis=0), v.max(axis=0)
    # Clip x, y to the frame's view at the body's far depth (the widest section it reaches).
    z_far = hi[2]
    lo[:2] = np.maximum(lo[:2], (np.array([-0.5, -0.5]) - [camera.cx, camera.cy]) * z_far / camera.focal_px)
    hi[:2] = np.minimum(hi[:2], (np.array([w - 0.5, h - 0.5]) - [camera.cx, camera.cy]) * z_far / camera.focal_px)
    if mask is not None and mask.any():
        z = float(np.median(v[:, 2]))
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        # Pixel edges of the mask's box, back-projected at depth z.
        x0, x1 = (cols[0] - camera.cx) * z / camera.focal_px, (cols[-1] + 1 - camera.cx) * z / camera.focal_px
        y0, y1 = (rows[0] - camera.cy) * z / camera.focal_px, (rows[-1] + 1 - camera.cy) * z / camera.focal_px
        lo[:2] = np.minimum(lo[:2], np.maximum([x0, y0], lo[:2] - reach_m))
        hi[:2] = np.maximum(hi[:2], np.minimum([x1, y1], hi[:2] + reach_m))
    half = 0.5 * margin * float(np.max(hi - lo))
    return CubeMap(centre=0.5 * (lo + hi), half=max(half, 0.05))


# ------------------------------------------------------------------ body grid and ray maps

def warm_up() -> None:
    """Load (or compile, the first time) the numba kernels, so the first frame does not wait."""
    tet = np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]], np.float64)
    tri = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    voxelize(tet, tri, 4)
    depth_range(tet[:, :2] * 4.0, tet[:, 2] + 1.0, tri.astype(np.int64), 4, 4)


def voxelize(vertices_cube: np.ndarray, faces: np.ndarray, grid: int) -> np.ndarray:
    """(G, G, G) bool [x, y, z] inside of a closed mesh by ray parity along z (numba).

    vertices_cube: (V, 3) cube coordinates; faces: (F, 3) int. Anny's posed meshes are
    closed, so one ray axis suffices (engine.volume.fields votes three for open meshes)."""
    return parity_fill(np.ascontiguousarray(vertices_cube, np.float64),
                       np.ascontiguousarray(faces, np.int64), grid)


def blurred_indicator(inside: np.ndarray, sigma_vox: float) -> torch.Tensor:
    """(G, G, G) bool -> (G, G, G) float32 tensor in [0, 1], Gaussian-blurred (sigma voxels).

    A blurred plane crosses 0.5 on the surface and reads Phi(-d / sigma) at signed distance
    d, which `indicator_to_distance` inverts."""
    b = ndimage.gaussian_filter(inside.astype(np.float32), sigma_vox, mode="constant", truncate=2.5)
    return torch.from_numpy(b)


def indicator_to_distance(b: torch.Tensor, sigma_m: float) -> torch.Tensor:
    """Blurred indicator values (N,) -> signed distance (N,) metres (negative inside),
    clamped to +-3 sigma where the blurred-plane model stops being informative."""
    lim = 0.5 * math.erfc(_BLUR_CLAMP / math.sqrt(2.0))
    return -sigma_m * torch.special.ndtri(b.clamp(lim, 1.0 - lim))


@numba.njit(cache=True)
def depth_range(uv: np.ndarray, z: np.ndarray, faces: np.ndarray, rows: int,
                cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest and farthest surface depth per map cell (a tiny z-buffer rasteriser).

    uv: (V, 2) float64 map coordinates (cell centres at integers); z: (V,) float64 depth,
    metres, > 0; faces: (F, 3) int64. Depth is interpolated as 1 / z (perspective-correct);
    every vertex also marks its own cell, so triangles smaller than a cell still count.
    Returns zmin, zmax: (rows, cols) float64, +inf / -inf where nothing projects."""
    zmin = np.full((rows, cols), np.inf)
    zmax = np.full((rows, cols), -np.inf)
    for i in range(uv.shape[0]):
        c, r = int(np.floor(uv[i, 0] + 0.5)), int(np.floor(uv[i, 1] + 0.5))
        if 0 <= r < rows and 0 <= c < cols:
            zmin[r, c] = min(zmin[r, c], z[i])
            zmax[r, c] = max(zmax[r, c], z[i])
    for f in range(faces.shape[0]):
        a, b, c3 = faces[f, 0], faces[f, 1], faces[f, 2]
        ax, ay, bx, by, cx, cy = uv[a, 0], uv[a, 1], uv[b, 0], uv[b, 1], uv[c3, 0], uv[c3, 1]
        det = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
        if det == 0.0:
            continue
        c0 = max(int(np.ceil(min(ax, bx, cx))), 0)
        c1 = min(int(np.floor(max(ax, bx, cx))), cols - 1)
        r0 = max(int(np.ceil(min(ay, by, cy))), 0)
        r1 = min(int(np.floor(max(ay, by, cy))), rows - 1)
        ia, ib, ic = 1.0 / z[a], 1.0 / z[b], 1.0 / z[c3]
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                l1 = ((bx - c) * (cy - r) - (cx - c) * (by - r)) / det
                l2 = ((cx - c) * (ay - r) - (ax - c) * (cy - r)) / det
                l3 = 1.0 - l1 - l2
                if l1 < 0.0 or l2 < 0.0 or l3 < 0.0:
                    continue
                d = 1.0 / (l1 * ia + l2 * ib + l3 * ic)
                zmin[r, c] = min(zmin[r, c], d)
                zmax[r, c] = max(zmax[r, c], d)
    return zmin, zmax


def ray_maps(vertices: np.ndarray, faces: np.ndarray, camera: Pinhole, window: "ImageWindow",
             settings: OfflineFieldSettings, size: int = 128,
             body_grid: tuple[np.ndarray, CubeMap] | None = None) -> torch.Tensor:
    """Per-pixel-ray summaries of the body over the window, filled outwards for the hull.

    vertices: (V, 3) camera space, metres; faces: (F, 3) int. The maps cover the window's
    crop at about `size` pixels on its long side (cells of a few cm on the person), along
    camera rays, so the hull and the colour's front/back test agree with the silhouette.
    Returns (1, 5, h', w') float32 [channel, row, col]; channels (camera z in metres):
      ZMID   middle of the body's depth extent on the ray, blurred outwards off the footprint;
      HALF   hull slab half thickness (hull_thickness * the body's, clamped below);
      D_FOOT 2-D signed distance to the body's projected footprint, frame pixels (negative on it);
      ZFRONT the body's nearest depth (minus dilate_m) on the footprint, ZMID - HALF off it;
      THICK  the body's depth extent on the ray, filled outwards like ZMID.
    body_grid: the blurred body indicator (G, G, G) [x, y, z] and its cube. The hull stays off
    the footprint only where that grid holds the body: where the mesh projects but the grid
    lost it (a thin forearm on a coarse grid), the hull's slab at the mesh's depth fills the
    ray, instead of leaving a hole inside the silhouette.
    """
    sx = sy = size / max(window.width, window.height)
    mw, mh = max(int(round(window.width * sx)), 2), max(int(round(window.height * sy)), 2)
    sx, sy = mw / window.width, mh / window.height
    v = np.asarray(vertices, np.float64)
    z = np.maximum(v[:, 2], _NEAR_M)
    # Map coordinates with cell centres at integers.
    cu = (v[:, 0] / z * camera.focal_px + camera.cx - window.x0 + 0.5) * sx - 0.5
    cv = (v[:, 1] / z * camera.focal_px + camera.cy - window.y0 + 0.5) * sy - 0.5
    zmin, zmax = depth_range(np.column_stack((cu, cv)), z, np.ascontiguousarray(faces, np.int64), mh, mw)
    hit = np.isfinite(zmin)
    # A closing fills the odd cell between slivers.
    present = cv2.morphologyEx(hit.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
    zmin = np.where(hit, zmin, 0.0).astype(np.float32)
    zmax = np.where(hit, zmax, 0.0).astype(np.float32)
    z_med = float(np.median(z[v[:, 2] > _NEAR_M])) if (v[:, 2] > _NEAR_M).any() else 1.0
    sigma = max(settings.hull_spread_m * camera.focal_px / z_med * sx / 2.0, 1.0)
    weight = hit.astype(np.float32)
    # The nearest footprint cell of every cell: the hull's values where the Gaussian's
    # weights have died out (a hand-held sign, the far side of a hugged person).
    if hit.any() and not hit.all():
        nearest = ndimage.distance_transform_edt(~hit, return_distances=False, return_indices=True)
    else:
        nearest = None
    floor = np.float32(1e-3)  # below this Gaussian weight the nearest value takes over, smoothly

    def fill(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
        # Normalised convolution: the mean of nearby body values, kept as-is where `keep`.
        num = cv2.GaussianBlur(values * weight, (0, 0), sigma)
        den = cv2.GaussianBlur(weight, (0, 0), sigma)
        near = values[nearest[0], nearest[1]] if nearest is not None else values
        return np.where(keep, values, (num + floor * near) / (den + floor)).astype(np.float32)

    zfront0 = fill(zmin, hit)
    zback0 = fill(zmax, hit)
    zmid = 0.5 * (zfront0 + zback0)
    thick = zback0 - zfront0
    half = np.maximum(settings.hull_thickness * 0.5 * thick, settings.min_half_thickness_m)
    if body_grid is not None:
        present &= _grid_footprint(*body_grid, camera, window, sx, sy, (mh, mw))
    p8 = present.astype(np.uint8)
    d_out = cv2.distanceTransform(1 - p8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_in = cv2.distanceTransform(p8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_foot = np.where(present, -(d_in - 0.5), d_out - 0.5).astype(np.float32)
    # Smoothed like the silhouette's distance, so the hull's edge shows no cell staircase.
    d_foot = cv2.GaussianBlur(d_foot, (0, 0), 1.0) / sx  # map cells -> frame pixels
    zfront = np.where(present, zfront0 - settings.dilate_m, zmid - half)
    maps = np.stack((zmid, half, d_foot, zfront, thick)).astype(np.float32)
    return torch.from_numpy(maps)[None]


def _grid_footprint(grid: np.ndarray, cube: CubeMap, camera: Pinhole, window: "ImageWindow",
                    sx: float, sy: float, shape: tuple[int, int]) -> np.ndarray:
    """(h', w') bool: the map cells that the body grid's inside voxels (indicator > 0.5)
    project into, each voxel widened to cover its projected size."""
    g = grid.shape[0]
    idx = np.argwhere(grid > 0.5)
    out = np.zeros(shape, bool)
    if len(idx) == 0:
        return out
    p = cube.centre + cube.half * (-1.0 + (2.0 * idx + 1.0) / g)
    z = np.maximum(p[:, 2], _NEAR_M)
    cu = np.round((p[:, 0] / z * camera.focal_px + camera.cx - window.x0 + 0.5) * sx - 0.5).astype(np.int64)
    cv = np.round((p[:, 1] / z * camera.focal_px + camera.cy - window.y0 + 0.5) * sy - 0.5).astype(np.int64)
    keep = (cu >= 0) & (cu < shape[1]) & (cv >= 0) & (cv < shape[0])
    out[cv[keep], cu[keep]] = True
    # A voxel spans voxel_px cells on the map: widen each hit to close the gaps between them.
    voxel_px = 2.0 * cube.half / g * camera.focal_px / float(np.median(z)) * max(sx, sy)
    r = max(int(np.ceil(voxel_px / 2.0)), 1)
    return cv2.dilate(out.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)


# ------------------------------------------------------------------ silhouette and image crop

def silhouette_sdf(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (h, w) float32 signed distance in pixels to the mask edge, positive
    outside, negative inside (5x5 chamfer transforms, lightly smoothed so the carve's normals
    do not show the pixel staircase)."""
    m = mask.astype(np.uint8)
    # The 5x5 chamfer mask is within ~2 % of the exact distance at a fraction of its cost.
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, cv2.DIST_MASK_5)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_5)
    # Inside -(d_in - 0.5), outside d_out - 0.5 (each transform is 0 on the other side).
    sdf = d_out - d_in
    sdf += 0.5 - m
    return cv2.GaussianBlur(sdf, (0, 0), 2.0)


def scaled_silhouette_sdf(mask: np.ndarray, max_side: int) -> np.ndarray:
    """silhouette_sdf on a copy of `mask` (h, w) scaled to at most `max_side` pixels on its long
    side; returns (h', w') float32 in the full-size crop's pixels (it covers the same extent,
    which is all grid_sample needs)."""
    h, w = mask.shape
    s = max_side / max(h, w)
    if s >= 1.0:
        return silhouette_sdf(mask)
    small = (max(int(round(w * s)), 2), max(int(round(h * s)), 2))
    m = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_AREA) > 0.5
    return silhouette_sdf(m) * np.float32(w / small[0])


def masked_blur(bgr: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Blur the person's colours into a fill for the unseen side.

    bgr: (h, w, 3) uint8 frame crop; mask: (h, w) bool. Works on a copy scaled to about
    `size` pixels on its long side, blurs colour and mask together (normalised convolution,
    so background never bleeds in) and returns (h', w', 3) float32 RGB in [0, 1] at that
    small size."""
    h, w = mask.shape
    s = size / max(h, w)
    small = (max(int(round(w * s)), 2), max(int(round(h * s)), 2))
    m8 = mask.astype(np.uint8)
    c = cv2.resize(cv2.bitwise_and(bgr, bgr, mask=m8), small, interpolation=cv2.INTER_AREA).astype(np.float32)
    m = cv2.resize(m8 * np.uint8(255), small, interpolation=cv2.INTER_AREA).astype(np.float32)
    sigma = 0.04 * size
    c = cv2.GaussianBlur(c, (0, 0), sigma)
    m = cv2.GaussianBlur(m, (0, 0), sigma)
    rgb = c[..., ::-1] / np.maximum(m, 1e-3)[..., None]
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class ImageWindow:
    """Image-space maps over a crop of the frame, sampled at projected points.

    x0, y0: the crop's top-left pixel in the frame; width, height: its size in pixels;
    frame_size: (H, W) of the whole frame.
    sil: (1, 1, h, w) float32 silhouette signed distance (pixels, positive outside) or None.
    mask: (1, 1, h, w) float32 person mask (0/1). rgb: (1, 3, h, w) float32 frame colours.
    fill: (1, 3, h', w') float32 blurred, mask-weighted colours covering the same crop."""

    x0: int
    y0: int
    width: int
    height: int
    frame_size: tuple[int, int]
    sil: torch.Tensor | None
    mask: torch.Tensor
    rgb: torch.Tensor
    fill: torch.Tensor

    def grid(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Frame pixels (N,) -> (1, N, 1, 2) grid_sample coordinates of the crop
        (pixel centres at integers, align_corners=False)."""
        gx = (2.0 * (u - self.x0) + 1.0) / self.width - 1.0
        gy = (2.0 * (v - self.y0) + 1.0) / self.height - 1.0
        return torch.stack((gx, gy), dim=1)[None, :, None, :]

    def frame_distance(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(N,) signed distance in pixels to the frame's rectangle (positive outside): the field
        ends where the camera's view ends."""
        h, w = self.frame_size
        return torch.maximum(torch.maximum(-0.5 - u, u - (w - 0.5)), torch.maximum(-0.5 - v, v - (h - 0.5)))


def sample2d(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) sampled bilinearly at (1, N, 1, 2) -> (N, C); outside reads the border
    (a person cut off by the frame edge continues past it)."""
    out = F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, :, 0].T


def image_window(image_bgr: np.ndarray, mask: np.ndarray | None, cube: CubeMap, camera: Pinhole,
                 fill_size: int, sil_max_side: int = 512) -> ImageWindow:
    """Crop the frame to the cube's projection and prepare its maps (see ImageWindow).

    image_bgr: (H, W, 3) uint8; mask: (H, W) bool or None (no carve, whole crop is colour).
    sil_max_side: the silhouette distance is computed on the crop scaled down to at most this
    many pixels on its long side (about twice the finest render lattice is all the carve can
    show; a 1080p close-up would otherwise cost several times more)."""
    h, w = image_bgr.shape[:2]
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    pts = cube.centre + cube.half * corners
    z = np.maximum(pts[:, 2], _NEAR_M)
    u = pts[:, 0] / z * camera.focal_px + camera.cx
    v = pts[:, 1] / z * camera.focal_px + camera.cy
    x0 = int(np.clip(np.floor(u.min()) - 2, 0, w - 1))
    x1 = int(np.clip(np.ceil(u.max()) + 3, x0 + 1, w))
    y0 = int(np.clip(np.floor(v.min()) - 2, 0, h - 1))
    y1 = int(np.clip(np.ceil(v.max()) + 3, y0 + 1, h))
    crop = image_bgr[y0:y1, x0:x1]
    m = np.ones(crop.shape[:2], bool) if mask is None else mask[y0:y1, x0:x1]
    sil = None if mask is None else torch.from_numpy(scaled_silhouette_sdf(m, sil_max_side))[None, None]
    # BGR uint8 (h, w, 3) -> RGB float (1, 3, h, w) in one torch pass.
    rgb = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[[2, 1, 0]].float().div_(255.0)[None]
    if m.any():
        fill = torch.from_numpy(masked_blur(crop, m, fill_size)).permute(2, 0, 1).contiguous()[None]
    else:
        fill = rgb
    return ImageWindow(x0, y0, x1 - x0, y1 - y0, (h, w), sil, torch.from_numpy(m.astype(np.float32))[None, None],
                       rgb, fill)


# ------------------------------------------------------------------ the field

def smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """min(a, b) with its crease rounded over a width k (the polynomial smooth minimum:
    subtracts at most k / 4 where a == b, nothing where |a - b| >= k)."""
    h = (k - (a - b).abs()).clamp_min(0.0) / k
    return torch.minimum(a, b) - h * h * (0.25 * k)


def smooth_max(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """max(a, b) with its crease rounded over a width k (see smooth_min)."""
    return -smooth_min(-a, -b, k)


@dataclass
class OfflineField:
    """Occupancy and colour of one frame's person as functions of cube points.

    occupancy(points (N, 3) float32 cube) -> (N,) float32 in [0, 1];
    color(points (M, 3)) -> (M, 3) float32 RGB in [0, 1];
    signed_distance(points) -> (N,) float32 metres, negative inside (before the sigmoid).
    cube, camera: the frames (see the module doc); eps_m: sigmoid width in metres.
    stats: build timings in ms ("ms_voxelize", "ms_blur", "ms_image", "ms_maps", "ms_build")
    and the cube ("cube_half_m", "cube_centre_m": camera space, metres)."""

    cube: CubeMap
    camera: Pinhole
    body: torch.Tensor          # (1, 1, G, G, G) blurred indicator, [x, y, z] stored as D, H, W
    maps: torch.Tensor          # (1, 5, h', w') ray maps over the window (see ray_maps)
    window: ImageWindow
    sigma_m: float
    eps_m: float
    settings: OfflineFieldSettings
    stats: dict[str, Any] = field(default_factory=dict)

    def body_distance(self, p: torch.Tensor) -> torch.Tensor:
        """(N, 3) cube points -> (N,) metres to the blurred body surface (no dilation)."""
        grid = p[:, [2, 1, 0]].reshape(1, -1, 1, 1, 3)
        b = F.grid_sample(self.body, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return indicator_to_distance(b.reshape(-1), self.sigma_m)

    def signed_distance(self, points: torch.Tensor) -> torch.Tensor:
        p = points.to(torch.float32)
        x = self.cube.to_camera(p)
        u, v, z = self.camera.project(x)
        px_to_m = z / self.camera.focal_px
        k = self.settings.blend_m
        d = self.body_distance(p) - self.settings.dilate_m
        d_image = self.window.frame_distance(u, v)
        if self.window.sil is not None:
            # The hull only makes sense where a mask says what to fill.
            grid = self.window.grid(u, v)
            rays = sample2d(self.maps, grid)  # (N, 5)
            d_foot = rays[:, D_FOOT] * px_to_m
            d_hull = smooth_max(smooth_max((x[:, 2] - rays[:, ZMID]).abs() - rays[:, HALF], -d_foot, k),
                                d_foot - self.settings.hull_reach_m, k)
            d = smooth_min(d, d_hull, k)
            d_image = torch.maximum(d_image, sample2d(self.window.sil, grid)[:, 0])
        d = smooth_max(d, d_image * px_to_m, k)
        return torch.where(x[:, 2] > _NEAR_M, d, torch.full_like(d, self.cube.half))

    def occupancy(self, points: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-self.signed_distance(points) / self.eps_m)

    def color(self, points: torch.Tensor) -> torch.Tensor:
        x = self.cube.to_camera(points.to(torch.float32))
        u, v, _ = self.camera.project(x)
        grid = self.window.grid(u, v)
        rays = sample2d(self.maps, grid)
        front = sample2d(self.window.rgb, grid)
        fill = sample2d(self.window.fill, grid)
        m = sample2d(self.window.mask, grid)
        # Inside the mask the frame's own pixel; at the carved edge the blurred person colour.
        front = m * front + (1.0 - m) * fill
        # 1 on the camera-facing surface, falling to 0 at the middle of the body's depth.
        ramp = (0.5 * rays[:, THICK]).clamp_min(0.03)
        w = (1.0 - (x[:, 2] - rays[:, ZFRONT]) / ramp).clamp(0.0, 1.0)[:, None]
        return (w * front + (1.0 - w) * self.settings.back_darken * fill).clamp(0.0, 1.0)


def build_offline_field(body: BodyResult, segmentation: np.ndarray | None, image_bgr: np.ndarray,
                        resolution: int = 257, settings: OfflineFieldSettings | None = None,
                        device: torch.device | str = "cpu",
                        cube_filter: Callable[[CubeMap], CubeMap] | None = None) -> OfflineField | None:
    """The offline field of one frame.

    body: the fitted mesh (camera space, metres) and its camera; segmentation: (H, W) float
    person probability or None (then nothing is carved); image_bgr: (H, W, 3) uint8 frame;
    resolution: the finest render lattice (sets the sigmoid width to eps_cells of its cells);
    device: where the field's tensors live (the localiser's query points must be there too);
    cube_filter: maps this frame's cube to the one used (the stage steadies it over time);
    it must return a cube that still holds the given one.
    Returns None when the body has no mesh or none of it is in view.
    """
    s = settings or OfflineFieldSettings()
    if len(body.vertices) == 0 or len(body.faces) == 0:
        return None
    t0 = time.perf_counter()
    camera = Pinhole(float(body.camera_focal_px), float(body.camera_center_px[0]), float(body.camera_center_px[1]))
    mask = None if segmentation is None else np.asarray(segmentation) > s.mask_threshold
    if mask is not None:
        mask = person_mask(mask, body.vertices, camera)
    cube = cube_for_person(body.vertices, camera, image_bgr.shape[:2], mask, s.margin, s.hull_reach_m + s.dilate_m)
    if cube is None:
        return None
    if cube_filter is not None:
        cube = cube_filter(cube)
    inside = voxelize(cube.to_cube(body.vertices), body.faces, s.grid)
    t1 = time.perf_counter()
    b = blurred_indicator(inside, s.blur_vox)
    t2 = time.perf_counter()
    window = image_window(image_bgr, mask, cube, camera, s.fill_size, 2 * resolution)
    t3 = time.perf_counter()
    maps = ray_maps(body.vertices, body.faces, camera, window, s, body_grid=(b.numpy(), cube))
    t4 = time.perf_counter()
    cell = 2.0 * cube.half / s.grid
    stats = {"ms_voxelize": (t1 - t0) * 1e3, "ms_blur": (t2 - t1) * 1e3, "ms_image": (t3 - t2) * 1e3,
             "ms_maps": (t4 - t3) * 1e3, "ms_build": (t4 - t0) * 1e3, "cube_half_m": cube.half,
             "cube_centre_m": [float(c) for c in cube.centre]}
    dev = torch.device(device)
    window = dataclasses.replace(
        window, sil=None if window.sil is None else window.sil.to(dev), mask=window.mask.to(dev),
        rgb=window.rgb.to(dev), fill=window.fill.to(dev))
    return OfflineField(cube=cube, camera=camera, body=b[None, None].to(dev), maps=maps.to(dev), window=window,
                        sigma_m=s.blur_vox * cell, eps_m=s.eps_cells * 2.0 * cube.half / max(resolution - 1, 1),
                        settings=s, stats=stats)


__all__ = ["OfflineFieldSettings", "CubeMap", "Pinhole", "cube_for_person", "warm_up", "voxelize", "blurred_indicator",
           "indicator_to_distance", "depth_range", "ray_maps", "silhouette_sdf", "scaled_silhouette_sdf", "masked_blur", "ImageWindow",
           "image_window", "sample2d", "smooth_min", "smooth_max", "OfflineField", "build_offline_field"]
