"""Mesh export of a localised occupancy grid (on request; the live path renders directly).

Marching cubes is scikit-image's (Lewiner); the mesh is returned as a trimesh.Trimesh in
cube coordinates (x right, y down, z away from the camera, [-1, 1]^3) so it lines up with
the field, and can be written to .obj / .ply / .glb by trimesh.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh
from skimage import measure

log = logging.getLogger(__name__)


def grid_to_mesh(grid: torch.Tensor | np.ndarray, threshold: float = 0.5,
                 color_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> trimesh.Trimesh:
    """Extract the `threshold` level set of a (R, R, R) occupancy grid indexed [x, y, z]
    over the cell centres -1 + (2i + 1) / R (see engine.volume.localize).

    color_fn: optional (M, 3) cube points -> (M, 3) RGB in [0, 1], queried at the vertices.
    Returns a Trimesh with outward-facing triangles (vertices in cube units); an empty
    Trimesh when the level set is empty.
    """
    vol = grid.detach().cpu().numpy() if isinstance(grid, torch.Tensor) else np.asarray(grid)
    vol = vol.astype(np.float32, copy=False)
    r = vol.shape[0]
    if not (vol.min() < threshold < vol.max()):
        log.info("grid has no %.2f crossing: empty mesh", threshold)
        return trimesh.Trimesh()
    verts, faces, _normals, _values = measure.marching_cubes(vol, level=threshold)
    verts = -1.0 + (2.0 * verts + 1.0) / r  # voxel index -> cube coordinate
    # Occupancy grows inwards, so skimage's faces point inwards; flip them outwards.
    mesh = trimesh.Trimesh(vertices=verts, faces=faces[:, ::-1], process=False)
    if color_fn is not None and len(verts):
        rgb = color_fn(torch.from_numpy(verts.astype(np.float32))).detach().cpu().numpy()
        alpha = np.full((len(verts), 1), 255, dtype=np.uint8)
        mesh.visual.vertex_colors = np.hstack((np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8), alpha))
    return mesh


def export_mesh(grid: torch.Tensor | np.ndarray, path: str | Path, threshold: float = 0.5,
                color_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Path:
    """grid_to_mesh and write it (format from the suffix: .obj, .ply, .glb, .stl)."""
    path = Path(path)
    mesh = grid_to_mesh(grid, threshold, color_fn)
    if len(mesh.faces) == 0:
        raise ValueError("nothing to export: the grid has no surface at this threshold")
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    log.info("exported %d vertices, %d faces to %s", len(mesh.vertices), len(mesh.faces), path)
    return path
