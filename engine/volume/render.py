"""Direct rendering of an implicit surface from a view-aligned occupancy lattice.

Coordinates. The field lives in the cube [-1, 1]^3 of the input camera: x right, y down
(image rows), z away from the camera (orthographic, so pixel (row, col) looks along +z).
A novel view orbits the cube: its own cube has the same axes, and a view point p_view maps
to the field point p_field = R(yaw, pitch) @ p_view (yaw about y, then pitch about x;
yaw = pitch = 0 is the input camera). The lattice is laid out in the view's cube, so every
pixel ray is one z-column of it: image pixel [row j, col i] is the column x = c_i, y = c_j,
with cell centres c_i = -1 + (2i + 1) / S, S = the finest resolution.

Per pixel: the first occupied voxel k along z; the depth of the `threshold` crossing
between voxels k - 1 and k by linear interpolation (lossless localisation has queried
both); the normal from finite differences (Sobel) of the lattice values around the
crossing; and the colour, queried
only at those visible points (at most S^2 per view).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from engine.volume.localize import DEFAULT_CHUNK, DEFAULT_RESOLUTIONS, OccupancyFn, cell_centres, localize

if TYPE_CHECKING:
    from engine.volume.result import VolumeResult

log = logging.getLogger(__name__)

# (M, 3) float32 field points -> (M, 3) float32 RGB in [0, 1].
ColorFn = Callable[[torch.Tensor], torch.Tensor]

# Lambert shading used when a field has no colour: unit direction towards a light near the
# viewer, up and to the right (view space, y down, z away from the viewer).
_LIGHT = (0.3, -0.4, -0.866)


@dataclass(frozen=True)
class RenderedView:
    """One direct rendering, S x S pixels (S = finest lattice resolution).

    color: (S, S, 3) float32 RGB in [0, 1], 0 where empty (shaded grey without color_fn).
    normal: (S, S, 3) float32 unit normals in view space (x right, y down, z away from the
        viewer; a surface facing the viewer has n_z < 0), 0 where empty.
    depth: (S, S) float32 distance from the view cube's near face (z = -1) to the surface
        along the ray, cube units in [0, 2], NaN where the ray hits nothing.
    mask: (S, S) bool, True where the ray hits the surface.
    stats: localisation stats (see localize) plus "ms_localize", "ms_render", "visible".
    silhouette: (S, S) float32, the largest field value along each ray minus the threshold
        (> 0 exactly where the ray hits): its zero crossing between rays is the outline at
        sub-lattice precision (engine.render.volume_image draws it at the output's resolution).
    """

    color: np.ndarray
    normal: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    silhouette: np.ndarray | None = None


def view_rotation(yaw_deg: float, pitch_deg: float) -> torch.Tensor:
    """(3, 3) float32 R with p_field = R @ p_view: yaw about the y (down) axis, then pitch
    about x. The viewer sits at -R[:, 2] (its -z): positive yaw moves it round towards -x
    (to the input camera's left), positive pitch towards +y (below)."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = torch.tensor([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]])
    return (ry @ rx).to(torch.float32)


def in_view(fn: Callable[[torch.Tensor], torch.Tensor], rotation: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a field function of field points into one of view points (p_field = R p_view)."""
    if torch.equal(rotation, torch.eye(3, dtype=rotation.dtype)):
        return fn

    def g(points: torch.Tensor) -> torch.Tensor:
        return fn(points @ rotation.to(points.device, points.dtype).T)

    return g


def first_hit(grid: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """First occupied voxel along +z and the sub-voxel depth of the crossing.

    grid: (S, S, S) float32 values indexed [x, y, z].
    Returns depth (S, S) float32 indexed [row = y, col = x] (distance from z = -1, NaN where
    empty) and k (S, S) int64 index of the first occupied voxel (-1 where empty).
    """
    s = grid.shape[2]
    inside = grid > threshold
    hit = inside.any(dim=2)
    k = inside.to(torch.uint8).argmax(dim=2)
    v1 = grid.gather(2, k[..., None])[..., 0]
    v0 = grid.gather(2, (k - 1).clamp_min(0)[..., None])[..., 0]
    # Crossing between k-1 and k; a hit in the first voxel sits at its centre.
    t = torch.where(k > 0, ((threshold - v0) / (v1 - v0)).clamp(0.0, 1.0), torch.ones_like(v1))
    z = -1.0 + (2.0 * (k.to(grid.dtype) - 1.0 + t) + 1.0) / s
    depth = torch.where(hit, z + 1.0, torch.full_like(z, float("nan")))
    return depth.T.contiguous(), torch.where(hit, k, torch.full_like(k, -1)).T.contiguous()


_SOBEL = (1.0, 2.0, 1.0)  # smoothing across the two axes a Sobel difference does not run along


def _sobel_gradient(grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(M, 3) Sobel gradient (central difference smoothed 1-2-1 across the other two axes)
    of grid [x, y, z] at integer voxels; neighbour indices are clamped at the borders."""
    s = grid.shape[0]
    r = torch.arange(-1, 2, device=grid.device)
    xi = (x[:, None] + r).clamp(0, s - 1)
    yi = (y[:, None] + r).clamp(0, s - 1)
    zi = (z[:, None] + r).clamp(0, s - 1)
    cube = grid[xi[:, :, None, None], yi[:, None, :, None], zi[:, None, None, :]]  # (M, 3, 3, 3)
    w = torch.tensor(_SOBEL, device=grid.device, dtype=grid.dtype)
    d = torch.tensor([-1.0, 0.0, 1.0], device=grid.device, dtype=grid.dtype)
    gx = torch.einsum("mabc,a,b,c->m", cube, d, w, w)
    gy = torch.einsum("mabc,a,b,c->m", cube, w, d, w)
    gz = torch.einsum("mabc,a,b,c->m", cube, w, w, d)
    return torch.stack((gx, gy, gz), dim=1)


def lattice_normals(grid: torch.Tensor, k: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(S, S, 3) unit normals (view space, outward = towards lower occupancy) at the surface
    crossing of each pixel's ray: Sobel finite differences of the lattice values at voxels
    k - 1 and k, blended by where the crossing lies between them.
    k: (S, S) int64 [row, col] first occupied voxel, -1 where empty -> zero normal."""
    s = grid.shape[0]
    rows, cols = torch.nonzero(k >= 0, as_tuple=True)
    x, y, z1 = cols, rows, k[rows, cols]
    z0 = (z1 - 1).clamp_min(0)
    v0, v1 = grid[x, y, z0], grid[x, y, z1]
    t = torch.where(z1 > 0, ((threshold - v0) / (v1 - v0)).clamp(0.0, 1.0), torch.ones_like(v1))
    g = (1.0 - t)[:, None] * _sobel_gradient(grid, x, y, z0) + t[:, None] * _sobel_gradient(grid, x, y, z1)
    norm = g.norm(dim=1, keepdim=True)
    n = torch.where(norm > 0, -g / norm.clamp_min(1e-12), torch.tensor([0.0, 0.0, -1.0], dtype=g.dtype, device=g.device))
    out = torch.zeros(s, s, 3, dtype=grid.dtype, device=grid.device)
    out[rows, cols] = n
    return out


def shade_grid(grid: torch.Tensor, rotation: torch.Tensor, color_fn: ColorFn | None = None,
               threshold: float = 0.5, chunk: int = DEFAULT_CHUNK) -> RenderedView:
    """Render a view-aligned lattice (values [x, y, z] in the view cube) without localising.

    rotation: (3, 3) field_from_view (see view_rotation); color_fn takes field points."""
    s = grid.shape[0]
    depth, k = first_hit(grid, threshold)
    mask = k >= 0
    normal = lattice_normals(grid, k, threshold)
    color = torch.zeros(s, s, 3, dtype=torch.float32, device=grid.device)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    if rows.numel():
        if color_fn is None:
            light = torch.tensor(_LIGHT, dtype=normal.dtype, device=normal.device)
            shade = 0.15 + 0.85 * (normal[rows, cols] @ light).clamp_min(0.0)
            color[rows, cols] = shade[:, None].expand(-1, 3)
        else:
            c = cell_centres(s, grid.device)
            pts = torch.stack((c[cols], c[rows], depth[rows, cols] - 1.0), dim=1)
            pts_field = pts @ rotation.to(pts.device, pts.dtype).T
            rgb = [color_fn(pts_field[i:i + chunk]).reshape(-1, 3) for i in range(0, pts_field.shape[0], chunk)]
            color[rows, cols] = torch.cat(rgb).to(torch.float32).clamp(0.0, 1.0)
    silhouette = (grid.amax(dim=2) - threshold).T
    return RenderedView(color=color.cpu().numpy(), normal=normal.cpu().numpy(),
                        depth=depth.cpu().numpy(), mask=mask.cpu().numpy(),
                        stats={"visible": int(rows.numel())},
                        silhouette=silhouette.contiguous().cpu().numpy().astype(np.float32))


def render_view(occupancy_fn: OccupancyFn, color_fn: ColorFn | None = None, yaw_deg: float = 0.0,
                pitch_deg: float = 0.0, resolutions: Sequence[int] = DEFAULT_RESOLUTIONS,
                mode: str = "lossless", threshold: float = 0.5, device: torch.device | str = "cpu",
                chunk: int = DEFAULT_CHUNK, size: int | None = None,
                color_size: int | None = None) -> RenderedView:
    """Localise the field once in the view's lattice and render it (see the module doc).

    occupancy_fn: (N, 3) float32 field points (cube, on `device`) -> (N,) occupancy.
    color_fn: (M, 3) field points -> (M, 3) RGB in [0, 1]; None shades the normals grey.
    resolutions, mode: the localisation schedule (e.g. (17, 33, 65, 129) and "faster" for
    live use); the image is resolutions[-1] pixels square unless `size` asks for another
    (then resampled: bilinear colour/normals, nearest depth/mask). With `color_size` finer
    than the lattice, the view is refined to it first (engine.volume.refine: colours asked of
    the colour field per fine pixel).
    """
    rot = view_rotation(yaw_deg, pitch_deg)
    t0 = time.perf_counter()
    grid, stats = localize(in_view(occupancy_fn, rot), resolutions, mode, threshold, device, chunk)
    t1 = time.perf_counter()
    view = shade_grid(grid, rot, color_fn, threshold, chunk)
    t2 = time.perf_counter()
    stats.update(view.stats, ms_localize=(t1 - t0) * 1e3, ms_render=(t2 - t1) * 1e3,
                 yaw_deg=float(yaw_deg), pitch_deg=float(pitch_deg))
    view = RenderedView(view.color, view.normal, view.depth, view.mask, stats, view.silhouette)
    if color_size is not None and color_fn is not None and color_size > view.depth.shape[0]:
        from engine.volume.refine import refine_view

        view = refine_view(view, color_size, color_fn, rot, device, chunk)
        view.stats["ms_color_refine"] = (time.perf_counter() - t2) * 1e3
    return view if size is None or size == view.depth.shape[0] else resize_view(view, size)


def resize_view(view: RenderedView, size: int) -> RenderedView:
    """Resample a view to size x size: colour and normals bilinearly (normals renormalised,
    empty pixels stay 0), depth and mask by nearest neighbour so no depth is invented."""
    def img(a: np.ndarray, mode: str) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        out = torch.nn.functional.interpolate(t, size=(size, size), mode=mode, **kwargs)[0]
        return (out[0] if a.ndim == 2 else out.permute(1, 2, 0)).numpy()

    mask = img(view.mask.astype(np.float32), "nearest") > 0.5
    depth = img(view.depth, "nearest")
    normal = img(view.normal, "bilinear")
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    normal[~mask] = 0.0
    color = img(view.color, "bilinear")
    color[~mask] = 0.0
    silhouette = None if view.silhouette is None else img(view.silhouette, "bilinear")
    return RenderedView(color, normal, depth, mask, dict(view.stats), silhouette)


def dense_view_grid(occupancy_fn: OccupancyFn, resolution: int, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Reference: the field at every cell centre of the view lattice -> (S, S, S) [x, y, z]."""
    from engine.volume.localize import dense_grid

    return dense_grid(in_view(occupancy_fn, view_rotation(yaw_deg, pitch_deg)), resolution, device)


def to_bgr8(color: np.ndarray) -> np.ndarray:
    """(..., 3) float RGB in [0, 1] -> uint8 BGR."""
    return np.clip(np.rint(color[..., ::-1] * 255.0), 0, 255).astype(np.uint8)


def normal_to_bgr8(normal: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(..., 3) unit normals -> uint8 BGR of (n + 1) / 2 * 255 (the usual normal map), black off-mask."""
    out = to_bgr8((normal + 1.0) * 0.5)
    if mask is not None:
        out[~mask] = 0
    return out


def views_to_result(views: Sequence[RenderedView], backend: str = "field") -> "VolumeResult":
    """Pack rendered views (all the same size) into the pipeline's VolumeResult: BGR uint8
    colour and normal maps, float32 depth; stats sum the queries and times over views."""
    from engine.volume.result import VolumeResult

    if not views:
        raise ValueError("views_to_result needs at least one view")
    stats = {
        "queries": int(sum(v.stats.get("queries", 0) for v in views)),
        "queries_per_level": [v.stats.get("queries_per_level", []) for v in views],
        "ms_localize": float(sum(v.stats.get("ms_localize", 0.0) for v in views)),
        "ms_render": float(sum(v.stats.get("ms_render", 0.0) for v in views)),
    }
    return VolumeResult(
        yaw_deg=np.array([v.stats.get("yaw_deg", 0.0) for v in views], dtype=np.float32),
        color=np.stack([to_bgr8(v.color) for v in views]),
        normal=np.stack([normal_to_bgr8(v.normal, v.mask) for v in views]),
        depth=np.stack([v.depth for v in views]).astype(np.float32),
        stats=stats, backend=backend, silhouette=stack_silhouettes(views))


def stack_silhouettes(views: Sequence[RenderedView]) -> np.ndarray | None:
    """(N, S, S) float32 silhouette fields of the views, None if any view has none."""
    if any(v.silhouette is None for v in views):
        return None
    return np.stack([v.silhouette for v in views]).astype(np.float32)


__all__ = ["RenderedView", "views_to_result", "stack_silhouettes", "resize_view", "ColorFn", "view_rotation", "in_view", "first_hit", "lattice_normals",
           "shade_grid", "render_view", "dense_view_grid", "to_bgr8", "normal_to_bgr8"]
