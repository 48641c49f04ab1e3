"""The volume measures of `bench quality`: the yaw-0 view's pixels map into the frame through
the field's cube and the body fit's camera, and a view that matches the mask scores an IoU
of ~1 with a sub-pixel outline step, one that is off scores less."""
from __future__ import annotations

import types

import numpy as np

from engine.bench.quality_volume import measure_view, view_to_image

S = 64
# A frame of 400 px: the view (512 px at the measure's output) spans 200 of its pixels, so the
# frame's own mask is not much coarser than the output.
FOCAL, CENTER, FRAME = 400.0, np.array([200.0, 200.0]), 400
STATS = {"cube_centre_m": [0.0, 0.0, 2.0], "cube_half_m": 0.5}


def disc_volume(radius_cube: float = 0.5, colour: int = 100):
    c = -1.0 + (2.0 * np.arange(S) + 1.0) / S
    x, y = np.meshgrid(c, c)
    hit = x ** 2 + y ** 2 < radius_cube ** 2
    depth = np.where(hit, 1.0, np.nan).astype(np.float32)  # the cube's centre plane: z = 2 m
    colour_img = np.where(hit[..., None], colour, 0).astype(np.uint8).repeat(3, axis=2)
    # The silhouette field of a disc-shaped surface: positive inside, its crossing on the rim.
    silhouette = (radius_cube - np.hypot(x, y)).astype(np.float32)
    return types.SimpleNamespace(yaw_deg=np.array([-45.0, 0.0, 45.0], np.float32), depth=np.stack([depth] * 3),
                                 color=np.stack([colour_img] * 3), stats=STATS,
                                 silhouette=np.stack([silhouette] * 3))


def image_disc(centre_px=(200.0, 200.0), radius_px: float = 50.0) -> np.ndarray:
    yy, xx = np.mgrid[0:FRAME, 0:FRAME]
    return np.hypot(xx + 0.0 - centre_px[0], yy + 0.0 - centre_px[1]) < radius_px


def test_view_pixels_project_through_the_cube_into_the_frame():
    pixels = view_to_image(STATS, disc_volume().depth[1], FOCAL, CENTER)
    # Cube x = 1 at z = 2 m is 0.5 m right of the axis: 400 * 0.5 / 2 = 100 px right of centre.
    assert abs(pixels[S // 2, -1, 0] - (200 + 100 * (1 - 1 / S))) < 1e-3
    assert abs(pixels[0, S // 2, 1] - (200 - 100 * (1 - 1 / S))) < 1e-3


def test_a_matching_view_scores_high_and_an_offset_one_lower():
    body = types.SimpleNamespace(camera_focal_px=FOCAL, camera_center_px=CENTER)
    frame = np.full((FRAME, FRAME, 3), 100, np.uint8)
    good = measure_view(disc_volume(), body, frame, image_disc())
    # A lattice pixel is 8 output pixels, a frame pixel 2.56: the outline follows the
    # silhouette field's crossing to within the frame mask's own steps.
    assert good["iou"] > 0.98 and good["psnr_db"] > 30 and good["outline_step_px"] <= 1.5, good
    off = measure_view(disc_volume(), body, frame, image_disc(centre_px=(224.0, 200.0)))
    assert off["iou"] < good["iou"] - 0.2 and off["outline_step_px"] > good["outline_step_px"]


def test_a_person_cut_by_the_frame_edge_is_judged_only_where_the_camera_saw():
    """The frame ends at row 208 and cuts the disc: a volume cut at the frame's edge (its last
    rows project onto the edge itself) matches; one that goes on below the frame, where the
    camera saw nothing, counts those pixels as wrong."""
    body = types.SimpleNamespace(camera_focal_px=FOCAL, camera_center_px=CENTER)
    frame = np.full((208, FRAME, 3), 100, np.uint8)
    mask = image_disc()[:208]
    full = disc_volume()
    rows = view_to_image(STATS, full.depth[1], FOCAL, CENTER)[..., 1]
    cut = disc_volume()
    cut.depth = np.where((rows <= 208.3)[None], full.depth, np.nan)
    # Its field ends on that line: the silhouette field crosses zero there (2 cube units
    # span 200 frame pixels).
    cut.silhouette = np.minimum(full.silhouette, ((208.3 - rows) * 0.01)[None]).astype(np.float32)
    on_edge = np.isfinite(cut.depth[1]) & (rows > 207.5)
    assert on_edge.any()  # hits that project just past the last row's centre
    good = measure_view(cut, body, frame, mask)
    assert good["iou"] > 0.97, good
    beyond = measure_view(full, body, frame, mask)
    assert beyond["iou"] < good["iou"] - 0.1, beyond
