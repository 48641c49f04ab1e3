"""The offline field on a synthetic person (a capsule in front of a pinhole camera):
occupancy where the body is, the silhouette and the frame edge carving it, the hull adding
what the mask shows beyond the body, and colours taken from the frame."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.volume.offline_field import OfflineFieldSettings, build_offline_field, cube_for_person, Pinhole
from tests.engine.volume.synthetic_body import (CENTRE, DEPTH, FOCAL, HEIGHT, LENGTH, RADIUS, WIDTH, capsule_body,
                                                project, silhouette, two_tone_frame)

SETTINGS = OfflineFieldSettings()


@pytest.fixture(scope="module")
def body():
    return capsule_body()


@pytest.fixture(scope="module")
def mask(body):
    return silhouette(body)


@pytest.fixture(scope="module")
def frame():
    return two_tone_frame()


@pytest.fixture(scope="module")
def field(body, mask, frame):
    return build_offline_field(body, mask, frame, 257, SETTINGS)


def _occ(field, camera_points) -> np.ndarray:
    p = torch.from_numpy(field.cube.to_cube(np.asarray(camera_points, np.float64)).astype(np.float32))
    return field.occupancy(p).numpy()


def _first_crossing(values: np.ndarray, coords: np.ndarray, inside_first: bool) -> float:
    """Linear interpolation of the first 0.5 crossing along a sampled line."""
    inside = values > 0.5
    k = int(np.argmax(~inside if inside_first else inside))
    assert 0 < k < len(values), "no crossing on the sampled line"
    a, b = values[k - 1], values[k]
    return float(coords[k - 1] + (0.5 - a) / (b - a) * (coords[k] - coords[k - 1]))


def _voxel(field) -> float:
    return 2.0 * field.cube.half / SETTINGS.grid


def test_cube_holds_the_body_and_is_centred_on_it(field, body):
    c = field.cube.to_cube(body.vertices)
    assert np.abs(c).max() < 1.0 / SETTINGS.margin + 1e-6
    np.testing.assert_allclose(field.cube.centre, [0.0, 0.0, DEPTH], atol=0.01)
    assert field.cube.half == pytest.approx(0.5 * SETTINGS.margin * (LENGTH + 2 * RADIUS), rel=0.02)


def test_inside_and_outside(field):
    inside = [[0.0, 0.0, DEPTH], [0.0, -0.6, DEPTH], [0.05, 0.4, DEPTH + 0.05]]
    outside = [[0.3, 0.0, DEPTH], [0.0, 0.0, DEPTH - 0.3], [0.0, 0.0, DEPTH + 0.3], [0.0, -0.85, DEPTH],
               [0.6, 0.6, DEPTH]]
    assert _occ(field, inside).min() > 0.99
    assert _occ(field, outside).max() < 0.01


def test_side_surface_follows_the_silhouette(field):
    # Across the image, the silhouette cone is tighter than the dilated body: the 0.5 level
    # sits on the capsule's projected edge (radius, to a pixel: 3 / 500 m at this depth).
    xs = np.linspace(0.0, 0.3, 601)
    occ = _occ(field, np.stack([xs, np.zeros_like(xs), np.full_like(xs, DEPTH)], 1))
    assert _first_crossing(occ, xs, inside_first=True) == pytest.approx(RADIUS, abs=DEPTH / FOCAL + 0.002)


def test_front_surface_is_the_dilated_body(field):
    # Along the view ray the silhouette says nothing: the front is the body plus dilate_m,
    # to the body grid's accuracy (0.6 voxel).
    zs = np.linspace(DEPTH - 0.4, DEPTH, 801)
    occ = _occ(field, np.stack([np.zeros_like(zs), np.zeros_like(zs), zs], 1))
    front = _first_crossing(occ, zs, inside_first=False)
    assert front == pytest.approx(DEPTH - RADIUS - SETTINGS.dilate_m, abs=0.6 * _voxel(field))


def test_silhouette_carves_points_outside_the_mask(body, mask, frame, field):
    cut = mask.copy()
    cut[:, : int(CENTRE[0])] = 0  # the mask loses the capsule's left half (x < 0)
    carved = build_offline_field(body, cut, frame, 257, SETTINGS)
    left = [[-0.08, 0.0, DEPTH], [-0.05, -0.3, DEPTH], [-0.1, 0.3, DEPTH + 0.05]]
    right = [[0.08, 0.0, DEPTH], [0.05, -0.3, DEPTH]]
    assert _occ(field, left).min() > 0.99
    assert _occ(carved, left).max() < 0.01
    assert _occ(carved, right).min() > 0.99


def test_no_mask_keeps_the_dilated_body(body, frame):
    f = build_offline_field(body, None, frame, 257, SETTINGS)
    xs = np.linspace(0.0, 0.3, 601)
    occ = _occ(f, np.stack([xs, np.zeros_like(xs), np.full_like(xs, DEPTH)], 1))
    side = _first_crossing(occ, xs, inside_first=True)
    assert side == pytest.approx(RADIUS + SETTINGS.dilate_m, abs=0.6 * _voxel(f))


def test_hull_adds_what_the_mask_shows_beside_the_body(body, mask, frame):
    # A 'skirt' in the mask, 4-10 cm right of the capsule at hip height: not body, but inside
    # the silhouette and near the body -> a slab at the body's depth; farther off -> nothing.
    wide = mask.copy()
    u0, u1 = (np.array([RADIUS + 0.0, RADIUS + 0.10]) / DEPTH * FOCAL + CENTRE[0]).astype(int)
    v0, v1 = (np.array([0.1, 0.4]) / DEPTH * FOCAL + CENTRE[1]).astype(int)
    wide[v0:v1, u0:u1] = 1
    far_u = int((RADIUS + 0.5) / DEPTH * FOCAL + CENTRE[0])
    wide[v0:v1, far_u:far_u + 10] = 1  # someone else, half a metre away
    f = build_offline_field(body, wide, frame, 257, SETTINGS)
    x_skirt = RADIUS + 0.05
    x_far = (far_u + 5 - CENTRE[0]) / FOCAL * DEPTH
    assert _occ(f, [[x_skirt, 0.25, DEPTH]])[0] > 0.99
    assert _occ(f, [[x_skirt, 0.25, DEPTH - 0.3], [x_skirt, 0.25, DEPTH + 0.3]]).max() < 0.01
    assert _occ(f, [[x_far, 0.25, DEPTH]])[0] < 0.01
    assert _occ(build_offline_field(body, mask, frame, 257, SETTINGS), [[x_skirt, 0.25, DEPTH]])[0] < 0.01


def test_hull_follows_what_the_person_holds_but_not_someone_apart(body, mask, frame):
    # A 'sign' held out at hip height, joined to the person's mask, reaching 40 cm off the
    # capsule: filled at the body's depth 25 cm out (the hull used to stop at 15 cm). The
    # same patch apart from the person (a gap of background between them) is someone else.
    u_body = int(RADIUS / DEPTH * FOCAL + CENTRE[0])
    u_end = int((RADIUS + 0.40) / DEPTH * FOCAL + CENTRE[0])
    v0, v1 = (np.array([0.1, 0.3]) / DEPTH * FOCAL + CENTRE[1]).astype(int)
    joined = mask.copy()
    joined[v0:v1, u_body - 2:u_end] = 1
    apart = mask.copy()
    apart[v0:v1, u_body + 12:u_end] = 1
    point = [[RADIUS + 0.25, 0.2, DEPTH]]
    assert _occ(build_offline_field(body, joined, frame, 257, SETTINGS), point)[0] > 0.99
    assert _occ(build_offline_field(body, apart, frame, 257, SETTINGS), point)[0] < 0.01


def test_a_limb_too_thin_for_the_body_grid_is_no_hole_in_the_silhouette(frame):
    # A capsule and, apart from it, a 'forearm' 2.4 cm thick: thinner than the 64^3 grid's
    # blur keeps (cells ~2.7 cm here). The mesh projects there, the mask holds it, so the
    # volume must too (the hull fills where the grid lost the body), at the limb's depth.
    import trimesh

    arm = trimesh.creation.cylinder(radius=0.012, height=0.35, sections=16)
    a = np.asarray(arm.vertices, np.float64)[:, [2, 1, 0]]  # along x
    a = a + np.array([RADIUS + 0.25, 0.2, DEPTH])
    torso = capsule_body()
    vertices = np.concatenate([torso.vertices.astype(np.float64), a]).astype(np.float32)
    faces = np.concatenate([torso.faces, np.asarray(arm.faces, np.int32)[:, ::-1] + len(torso.vertices)])
    body = type(torso)(**{**torso.__dict__, "vertices": vertices, "faces": faces})
    f = build_offline_field(body, silhouette(body), frame, 257, SETTINGS)
    along = [[RADIUS + x, 0.2, DEPTH] for x in (0.15, 0.2, 0.25, 0.3, 0.35)]
    assert _occ(f, along).min() > 0.5
    assert _occ(f, [[RADIUS + 0.25, 0.2, DEPTH - 0.1], [RADIUS + 0.25, 0.2, DEPTH + 0.1]]).max() < 0.01


def test_person_mask_keeps_the_regions_the_body_projects_into(body, mask):
    from engine.volume.person_mask import person_mask

    camera = Pinhole(FOCAL, *CENTRE)
    crowd = mask.astype(bool).copy()
    crowd[:, 450:560] = True  # a neighbour on the right, apart from the person
    crowd[10:14, 10:14] = True  # a speck
    own = person_mask(crowd, body.vertices, camera)
    assert np.array_equal(own, mask.astype(bool))
    # A body the mask does not hold keeps the whole mask (the carve still applies).
    away = type(body)(**{**body.__dict__, "vertices": body.vertices + np.array([0.0, 0.0, 50.0], np.float32)})
    elsewhere = np.zeros_like(crowd)
    elsewhere[:, 450:560] = True
    assert np.array_equal(person_mask(elsewhere, away.vertices, camera), elsewhere)


def test_frame_edge_ends_the_field():
    # Lowered so its bottom leaves the frame: nothing below the frame's last row.
    body = capsule_body(offset_y=0.9)
    f = build_offline_field(body, silhouette(body), two_tone_frame(), 257, SETTINGS)
    y_edge = (HEIGHT - 0.5 - CENTRE[1]) / FOCAL * DEPTH
    assert _occ(f, [[0.0, y_edge - 0.05, DEPTH]])[0] > 0.99
    assert _occ(f, [[0.0, y_edge + 0.05, DEPTH]])[0] < 0.01


def test_cube_ignores_the_body_outside_the_frame():
    body = capsule_body(offset_y=0.9)
    cube = cube_for_person(body.vertices, Pinhole(FOCAL, *CENTRE), (HEIGHT, WIDTH), None, SETTINGS.margin)
    # The box is clipped at the frame's lower edge, taken at the body's far depth.
    y_edge = (HEIGHT - 0.5 - CENTRE[1]) / FOCAL * (DEPTH + RADIUS)
    top = 0.9 - 0.5 * LENGTH - RADIUS
    assert cube.centre[1] == pytest.approx(0.5 * (top + y_edge), abs=0.005)
    assert cube.half == pytest.approx(0.5 * SETTINGS.margin * (y_edge - top), abs=0.005)


def test_front_colour_is_the_pixel_it_projects_to(field, frame):
    # Points on the camera-facing surface whose projections land on pixel centres.
    pixels = np.array([[310, 200], [330, 260], [318, 150], [325, 330]], np.float64)
    z = DEPTH - RADIUS - SETTINGS.dilate_m - 0.01
    pts = np.column_stack([(pixels - CENTRE) / FOCAL * z, np.full(len(pixels), z)])
    np.testing.assert_allclose(project(pts), pixels, atol=1e-9)
    rgb = field.color(torch.from_numpy(field.cube.to_cube(pts).astype(np.float32))).numpy()
    want = frame[pixels[:, 1].astype(int), pixels[:, 0].astype(int), ::-1] / 255.0
    np.testing.assert_allclose(rgb, want, atol=1e-5)


def test_back_colour_is_the_darkened_person_fill(body, mask):
    # A uniformly coloured person: the back fill is that colour times back_darken.
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[mask > 0] = (50, 100, 200)
    f = build_offline_field(body, mask, image, 257, SETTINGS)
    back = np.array([[0.0, 0.0, DEPTH + RADIUS], [0.05, -0.3, DEPTH + RADIUS - 0.02]])
    rgb = f.color(torch.from_numpy(f.cube.to_cube(back).astype(np.float32))).numpy()
    np.testing.assert_allclose(rgb, np.tile(np.array([200, 100, 50]) / 255.0 * SETTINGS.back_darken, (2, 1)),
                               atol=0.01)


def test_empty_or_out_of_view_body_gives_none(body, mask, frame):
    empty = capsule_body()
    empty = type(empty)(**{**empty.__dict__, "vertices": np.zeros((0, 3), np.float32)})
    assert build_offline_field(empty, mask, frame) is None
    behind = type(body)(**{**body.__dict__, "vertices": body.vertices * np.array([1, 1, -1], np.float32)})
    assert build_offline_field(behind, mask, frame) is None


def test_someone_elses_mask_does_not_grow_the_cube(body, mask):
    camera = Pinhole(FOCAL, *CENTRE)
    own = cube_for_person(body.vertices, camera, (HEIGHT, WIDTH), mask > 0, SETTINGS.margin, 0.17)
    crowd = mask.copy()
    crowd[:, 450:560] = 1  # a tall neighbour on the right, metres away
    grown = cube_for_person(body.vertices, camera, (HEIGHT, WIDTH), crowd > 0, SETTINGS.margin, 0.17)
    # The neighbour spans the whole frame height: the box grows by at most the reach at each
    # end of its longest (vertical) side, and by at most the reach to the right.
    assert own.half < grown.half <= own.half + 0.17 * SETTINGS.margin + 1e-6
    assert grown.centre[0] - own.centre[0] <= 0.5 * 0.17 + 1e-6


def test_scaled_silhouette_distance_matches_the_full_size_one(mask):
    from engine.volume.offline_field import scaled_silhouette_sdf, silhouette_sdf

    m = mask > 0
    full = silhouette_sdf(m)
    half = scaled_silhouette_sdf(m, max(m.shape) // 2)
    assert half.shape == (m.shape[0] // 2, m.shape[1] // 2)
    # Upsampled back, it agrees with the full-size map near the edge (where it matters) to
    # about one half-size pixel; the larger smoothing (2 half-size pixels) rounds the caps.
    up = cv2.resize(half, (m.shape[1], m.shape[0]), interpolation=cv2.INTER_LINEAR)
    err = np.abs(up - full)[np.abs(full) < 10]
    assert err.max() < 2.5 and err.mean() < 1.0
    assert scaled_silhouette_sdf(m, 10_000) is not None and np.array_equal(scaled_silhouette_sdf(m, 10_000), full)
