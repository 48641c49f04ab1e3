"""Marching-cubes export of a localised grid (scikit-image + trimesh)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from engine.volume import fields
from engine.volume.localize import localize
from engine.volume.mesh import export_mesh, grid_to_mesh

RADIUS = 0.35


@pytest.fixture(scope="module")
def sphere_grid() -> torch.Tensor:
    grid, _ = localize(fields.sphere_field(RADIUS, eps=2.0 / 65), resolutions=(17, 33, 65))
    return grid


def test_sphere_mesh_is_closed_outward_and_in_cube_units(sphere_grid):
    mesh = grid_to_mesh(sphere_grid)
    assert mesh.is_watertight
    assert mesh.volume > 0, "faces must point outwards"
    assert mesh.volume == pytest.approx(4.0 / 3.0 * np.pi * RADIUS ** 3, rel=0.01)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(r - RADIUS).max() < 0.5 * 2.0 / 65  # within half a cell of the true surface


def test_off_centre_shape_lands_where_the_field_is():
    f = fields.occupancy_from_sdf(lambda p: fields.sphere_sdf(p, (0.3, -0.2, 0.1), 0.2), eps=2.0 / 65)
    grid, _ = localize(f, resolutions=(17, 33, 65))
    mesh = grid_to_mesh(grid)
    np.testing.assert_allclose(mesh.vertices.mean(axis=0), (0.3, -0.2, 0.1), atol=0.01)


def test_vertex_colours_from_color_fn(sphere_grid):
    mesh = grid_to_mesh(sphere_grid, color_fn=lambda p: (p * 0.5 + 0.5).clamp(0, 1))
    rgb = mesh.visual.vertex_colors[:, :3].astype(np.float64) / 255.0
    np.testing.assert_allclose(rgb, mesh.vertices * 0.5 + 0.5, atol=1.0 / 255 + 1e-6)


def test_export_roundtrip(tmp_path, sphere_grid):
    path = export_mesh(sphere_grid, tmp_path / "sphere.ply")
    loaded = trimesh.load(path, force="mesh")
    assert len(loaded.faces) == len(grid_to_mesh(sphere_grid).faces)


def test_empty_grid():
    assert len(grid_to_mesh(torch.zeros(9, 9, 9)).faces) == 0
    with pytest.raises(ValueError):
        export_mesh(torch.zeros(9, 9, 9), "/nonexistent/never.ply")
