"""Direct rendering: the localised field gives the dense field's first-hit depth per pixel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.volume import fields
from engine.volume.localize import cell_centres
from engine.volume.render import (dense_view_grid, first_hit, normal_to_bgr8, render_view, to_bgr8,
                                  view_rotation, views_to_result)

R = 257


def _assert_same_depth(got: np.ndarray, want: np.ndarray) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want)), "hit masks differ"
    hit = ~np.isnan(want)
    # Same queried values on both sides of the crossing: equal up to float noise (a voxel
    # off would be 2 / 257 = 7.8e-3).
    np.testing.assert_allclose(got[hit], want[hit], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,yaw,pitch", [("body", 35.0, -20.0), ("blobs_visible", 0.0, 0.0)])
def test_lossless_render_equals_dense_first_hit(name, yaw, pitch):
    f = fields.body_field() if name == "body" else fields.blobs_field(fields.BLOBS_VISIBLE)
    calls = []

    def color_fn(p: torch.Tensor) -> torch.Tensor:
        calls.append(p.shape[0])
        return (p * 0.5 + 0.5).clamp(0.0, 1.0)

    view = render_view(f, color_fn, yaw, pitch, mode="lossless")
    dense_depth, _ = first_hit(dense_view_grid(f, R, yaw, pitch))
    _assert_same_depth(view.depth, dense_depth.numpy())
    assert view.mask.sum() > 1000
    # Colour is queried only at the visible points, once each.
    assert sum(calls) == int(view.mask.sum()) == view.stats["visible"]
    assert view.color.shape == (R, R, 3) and view.normal.shape == (R, R, 3)
    assert np.all(view.color[~view.mask] == 0)


def test_sphere_depth_normals_and_colour_positions():
    radius = 0.5
    f = fields.sphere_field(radius, eps=2.0 / 129)  # boundary about one lattice cell wide
    view = render_view(f, lambda p: (p * 0.5 + 0.5).clamp(0, 1), 0.0, 0.0, resolutions=(17, 33, 65, 129))
    c = cell_centres(129).numpy()
    x, y = np.meshgrid(c, c, indexing="xy")  # image [row = y, col = x]
    inside = x ** 2 + y ** 2 < (radius - 0.03) ** 2
    z_true = -np.sqrt(np.clip(radius ** 2 - x ** 2 - y ** 2, 0, None))
    depth_true = z_true + 1.0
    assert np.all(view.mask[inside])
    assert np.abs(view.depth[inside] - depth_true[inside]).max() < 0.01
    n_true = np.stack((x, y, z_true), axis=-1) / radius
    cos = (view.normal[inside] * n_true[inside]).sum(axis=1)
    assert cos.min() > np.cos(np.radians(3.0))
    # colour_fn received the field points on the surface: its x, y come back as colour.
    np.testing.assert_allclose(view.color[inside][:, 0], x[inside] * 0.5 + 0.5, atol=1e-5)
    np.testing.assert_allclose(view.color[inside][:, 1], y[inside] * 0.5 + 0.5, atol=1e-5)


def test_orbit_moves_the_subject_the_right_way():
    # A ball at +x seen from yaw -90 (viewer moved round to +x, looking towards -x) is in
    # front: its surface is nearer than the centre plane.
    f = fields.occupancy_from_sdf(lambda p: fields.sphere_sdf(p, (0.5, 0.0, 0.0), 0.2))
    front = render_view(f, None, 0.0, 0.0, resolutions=(17, 33, 65))
    side = render_view(f, None, -90.0, 0.0, resolutions=(17, 33, 65))
    assert np.nanmin(side.depth) == pytest.approx(1.0 - 0.5 - 0.2, abs=0.02)
    assert np.nanmin(front.depth) == pytest.approx(1.0 - 0.2, abs=0.02)
    # The rotation maps the view's +z (away from the viewer) to field -x at yaw -90.
    np.testing.assert_allclose(view_rotation(-90.0, 0.0) @ torch.tensor([0.0, 0.0, 1.0]),
                               [-1.0, 0.0, 0.0], atol=1e-6)


def test_faster_render_close_to_lossless():
    f = fields.body_field(eps=2.0 / 129)
    a = render_view(f, None, 20.0, 0.0, resolutions=(17, 33, 65, 129), mode="lossless")
    b = render_view(f, None, 20.0, 0.0, resolutions=(17, 33, 65, 129), mode="faster")
    agree = (a.mask == b.mask).mean()
    assert agree > 0.99
    both = a.mask & b.mask
    assert np.median(np.abs(a.depth[both] - b.depth[both])) < 2.0 / 129
    assert b.stats["queries"] < a.stats["queries"]
    for key in ("ms_localize", "ms_render", "queries_per_level"):
        assert key in b.stats


def test_views_to_result():
    f = fields.sphere_field(0.4, eps=2.0 / 33)
    views = [render_view(f, None, yaw, 0.0, resolutions=(9, 17, 33)) for yaw in (0.0, 90.0)]
    result = views_to_result(views, backend="field")
    assert result.color.shape == (2, 33, 33, 3) and result.color.dtype == np.uint8
    assert result.normal.shape == (2, 33, 33, 3) and result.depth.shape == (2, 33, 33)
    np.testing.assert_array_equal(result.yaw_deg, [0.0, 90.0])
    assert result.stats["queries"] == sum(v.stats["queries"] for v in views)
    assert result.to_json()["coverage"][0] == pytest.approx(np.pi * 0.4 ** 2 / 4, abs=0.01)  # disc / square


def test_output_size():
    f = fields.sphere_field(0.4, eps=2.0 / 65)
    base = render_view(f, None, 0.0, 0.0, resolutions=(17, 33, 65))
    big = render_view(f, None, 0.0, 0.0, resolutions=(17, 33, 65), size=130)
    assert big.color.shape == (130, 130, 3) and big.depth.shape == (130, 130)
    # Nearest-neighbour 2x: every source pixel becomes a 2x2 block with the same depth.
    np.testing.assert_array_equal(big.depth[::2, ::2], base.depth)
    np.testing.assert_array_equal(big.mask[1::2, 1::2], base.mask)
    norms = np.linalg.norm(big.normal[big.mask], axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_encoders():
    color = np.array([[[1.0, 0.5, 0.0]]], dtype=np.float32)
    assert to_bgr8(color).tolist() == [[[0, 128, 255]]]
    normal = np.array([[[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]], dtype=np.float32)
    out = normal_to_bgr8(normal, np.array([[True, False]]))
    assert out[0, 0].tolist() == [0, 128, 128] and out[0, 1].tolist() == [0, 0, 0]
