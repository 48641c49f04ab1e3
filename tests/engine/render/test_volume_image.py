"""The volume drawn at the output's pixels: the outline follows the field's own crossing
between rays (no staircase of lattice pixels), and the edge keeps the surface's colour."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from engine.bench.quality_volume import outline_distance_p95
from engine.render.volume_image import crisp_volume_view, volume_image
from engine.volume import fields
from engine.volume.render import render_view, views_to_result

OUT = 520  # 8 output pixels per lattice pixel at 65


def _volume(field, resolutions, colour=None):
    view = render_view(field, colour, 0.0, 0.0, resolutions=resolutions, mode="lossless")
    return views_to_result([view])


def _true_disc(radius: float) -> np.ndarray:
    c = -1.0 + (2.0 * np.arange(OUT) + 1.0) / OUT  # output pixel centres in the cube
    x, y = np.meshgrid(c, c)
    return x ** 2 + y ** 2 < radius ** 2


def test_a_sphere_outline_is_within_a_pixel_at_eight_times_the_lattice():
    radius = 0.55
    volume = _volume(fields.sphere_field(radius, eps=2.0 / 257), (17, 33, 65))
    crisp = crisp_volume_view(volume, 0, OUT).mask
    truth = _true_disc(radius)
    blocky = cv2.resize(np.isfinite(volume.depth[0]).astype(np.uint8), (OUT, OUT),
                        interpolation=cv2.INTER_NEAREST) > 0
    assert outline_distance_p95(crisp, truth) <= 1.0
    assert outline_distance_p95(blocky, truth) >= 3.0  # what scaling the lattice image gave


def test_a_coarse_lattice_drawn_large_matches_a_fine_one():
    """The body field from 65 voxels at 520 px against the same from 257. Its thinnest limbs
    are under one 65-voxel wide, so the coarse one misses some of them; scaling its lattice
    image up misses far more and steps around everything."""
    field = fields.body_field()
    coarse_volume = _volume(field, (17, 33, 65))
    coarse = crisp_volume_view(coarse_volume, 0, OUT).mask
    fine = crisp_volume_view(_volume(field, (17, 33, 65, 129, 257)), 0, OUT).mask
    blocky = cv2.resize(np.isfinite(coarse_volume.depth[0]).astype(np.uint8), (OUT, OUT),
                        interpolation=cv2.INTER_NEAREST) > 0

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / (a | b).sum())

    assert iou(coarse, fine) > 0.95 and iou(coarse, fine) > iou(blocky, fine) + 0.05
    assert outline_distance_p95(coarse, fine) <= 1.5
    assert outline_distance_p95(blocky, fine) >= 3.0


def test_the_edge_keeps_the_surface_colour_and_fades_to_the_background():
    grey = 0.8
    volume = _volume(fields.sphere_field(0.5, eps=2.0 / 257), (17, 33, 65),
                     lambda p: torch.full((p.shape[0], 3), grey))
    view = crisp_volume_view(volume, 0, OUT)
    want = round(grey * 255)
    full, part, none = view.alpha >= 1.0, (view.alpha > 0.05) & (view.alpha < 0.95), view.alpha <= 0.0
    assert full.sum() > 1000 and part.sum() > 100
    assert np.abs(view.color[full].astype(int) - want).max() <= 1  # no dark fringe inside
    expected = view.alpha[part] * want
    assert np.abs(view.color[part][:, 0] - expected).max() <= 1.5  # premultiplied edge
    assert np.all(view.color[none] == 0)
    # The app's image is the same drawing.
    assert np.array_equal(volume_image(volume, 0, OUT), view.color)


def test_an_empty_volume_draws_nothing():
    volume = _volume(fields.sphere_field(0.2, eps=2.0 / 257), (17, 33, 65))
    empty = type(volume)(yaw_deg=volume.yaw_deg, color=np.zeros_like(volume.color),
                         normal=np.zeros_like(volume.normal), depth=np.full_like(volume.depth, np.nan))
    view = crisp_volume_view(empty, 0, 64)
    assert not view.mask.any() and not view.color.any() and np.isnan(view.depth).all()
    assert not volume_image(empty, 0, 64).any()


def test_the_png_novel_views_are_drawn_at_their_output_size(tmp_path):
    from engine.headless_writer import write_volume_views

    radius = 0.55
    volume = _volume(fields.sphere_field(radius, eps=2.0 / 257), (17, 33, 65),
                     lambda p: torch.full((p.shape[0], 3), 1.0))
    (path,) = write_volume_views(volume, tmp_path, size=OUT)
    image = cv2.imread(str(path))
    assert path.name == "volume_yaw+0.png" and image.shape == (OUT, 2 * OUT, 3)
    colour = image[:, :OUT, 0] >= 128  # white over black: half covered on the outline
    assert outline_distance_p95(colour, _true_disc(radius)) <= 1.0


def test_both_images_at_once_equal_each_drawn_alone():
    from engine.render.volume_image import volume_images

    volume = _volume(fields.body_field(), (17, 33, 65))
    colour, normal = volume_images(volume, 0, 300)
    assert np.array_equal(colour, volume_image(volume, 0, 300))
    assert np.array_equal(normal, volume_image(volume, 0, 300, "normal"))
