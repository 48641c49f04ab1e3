"""The volume measures of `bench quality`: the yaw-0 view's pixels map into the frame through
the field's cube and the body fit's camera, and a view that matches the mask scores an IoU
of ~1 with a sub-pixel outline step, one that is off scores less."""
from __future__ import annotations

import types

import numpy as np

from engine.bench.quality_volume import measure_view, view_to_image

S = 64
FOCAL, CENTER = 100.0, np.array([50.0, 50.0])
STATS = {"cube_centre_m": [0.0, 0.0, 2.0], "cube_half_m": 0.5}


def disc_volume(radius_cube: float = 0.5, colour: int = 100):
    c = -1.0 + (2.0 * np.arange(S) + 1.0) / S
    x, y = np.meshgrid(c, c)
    hit = x ** 2 + y ** 2 < radius_cube ** 2
    depth = np.where(hit, 1.0, np.nan).astype(np.float32)  # the cube's centre plane: z = 2 m
    colour_img = np.where(hit[..., None], colour, 0).astype(np.uint8).repeat(3, axis=2)
    return types.SimpleNamespace(yaw_deg=np.array([-45.0, 0.0, 45.0], np.float32), depth=np.stack([depth] * 3),
                                 color=np.stack([colour_img] * 3), stats=STATS)


def image_disc(centre_px=(50.0, 50.0), radius_px: float = 12.5) -> np.ndarray:
    yy, xx = np.mgrid[0:100, 0:100]
    return np.hypot(xx + 0.0 - centre_px[0], yy + 0.0 - centre_px[1]) < radius_px


def test_view_pixels_project_through_the_cube_into_the_frame():
    pixels = view_to_image(STATS, disc_volume().depth[1], FOCAL, CENTER)
    # Cube x = 1 at z = 2 m is 0.5 m right of the axis: 100 * 0.5 / 2 = 25 px right of centre.
    assert abs(pixels[S // 2, -1, 0] - (50 + 25 * (1 - 1 / S))) < 1e-3
    assert abs(pixels[0, S // 2, 1] - (50 - 25 * (1 - 1 / S))) < 1e-3


def test_a_matching_view_scores_high_and_an_offset_one_lower():
    body = types.SimpleNamespace(camera_focal_px=FOCAL, camera_center_px=CENTER)
    frame = np.full((100, 100, 3), 100, np.uint8)
    good = measure_view(disc_volume(), body, frame, image_disc())
    assert good["iou"] > 0.95 and good["psnr_db"] > 40 and good["outline_step_px"] <= 8.0 * 1.5
    off = measure_view(disc_volume(), body, frame, image_disc(centre_px=(56.0, 50.0)))
    assert off["iou"] < good["iou"] - 0.2 and off["outline_step_px"] > good["outline_step_px"]


def test_a_person_cut_by_the_frame_edge_is_judged_only_where_the_camera_saw():
    """The frame ends at row 52 and cuts the disc: a volume cut at the frame's edge (its last
    rows project onto the edge itself) matches; one that goes on below the frame, where the
    camera saw nothing, counts those pixels as wrong."""
    body = types.SimpleNamespace(camera_focal_px=FOCAL, camera_center_px=CENTER)
    frame = np.full((52, 100, 3), 100, np.uint8)
    mask = image_disc()[:52]
    full = disc_volume()
    rows = view_to_image(STATS, full.depth[1], FOCAL, CENTER)[..., 1]
    cut = disc_volume()
    cut.depth = np.where((rows <= 52.3)[None], full.depth, np.nan)
    on_edge = np.isfinite(cut.depth[1]) & (rows > 51.5)
    assert on_edge.any()  # hits that project just past the last row's centre
    good = measure_view(cut, body, frame, mask)
    assert good["iou"] > 0.97, good
    beyond = measure_view(full, body, frame, mask)
    assert beyond["iou"] < good["iou"] - 0.1, beyond
