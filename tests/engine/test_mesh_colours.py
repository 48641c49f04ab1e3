"""Per-vertex colours from the frames: the seen vertices take the image's colour at their
pixel, hidden ones (behind the mesh's own front) and unseen ones do not, and colours persist
when a part turns away."""
from __future__ import annotations

import time

import numpy as np

from engine.mesh_colours import VertexColourTrack, visible_vertices

FOCAL, CX, CY = 200.0, 80.0, 60.0
H, W = 120, 160


def grid_plane(z: float, half: float, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """An n×n vertex grid facing the camera at depth z, half-width `half` metres."""
    xs = np.linspace(-half, half, n, dtype=np.float32)
    xx, yy = np.meshgrid(xs, xs)
    vertices = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, z, np.float32)], axis=1)
    tris = []
    for r in range(n - 1):
        for c in range(n - 1):
            a = r * n + c
            tris += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    return vertices, np.array(tris, np.int32)


def project(vertices: np.ndarray) -> np.ndarray:
    return vertices[:, :2] / vertices[:, 2:3] * FOCAL + np.array([CX, CY], np.float32)


def gradient() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx * 255 // W, yy * 255 // H, (xx + yy) * 255 // (W + H)], axis=2).astype(np.uint8)


def two_planes():
    front, front_tris = grid_plane(1.0, 0.15)
    back, back_tris = grid_plane(1.5, 0.2)  # behind the front one, projecting inside it
    vertices = np.concatenate([front, back])
    triangles = np.concatenate([front_tris, back_tris + len(front)])
    return vertices, triangles, len(front)


def test_seen_vertices_take_the_image_colour_at_their_pixel():
    vertices, triangles, n_front = two_planes()
    image = gradient()
    colours = VertexColourTrack(background=False).update(image, project(vertices), vertices, triangles)
    px = np.round(project(vertices[:n_front])).astype(int)
    expected = image[px[:, 1], px[:, 0]].astype(int)
    assert np.abs(colours[:n_front].astype(int) - expected).max() <= 3


def test_vertices_behind_the_mesh_are_not_painted_with_the_front():
    vertices, triangles, n_front = two_planes()
    visible = visible_vertices(project(vertices), vertices, triangles, (H, W))
    assert visible[:n_front].all()
    assert not visible[n_front:].any(), "the back plane is hidden by the front one"
    colours = VertexColourTrack(background=False).update(gradient(), project(vertices), vertices, triangles)
    back = colours[n_front:].astype(int)
    # Never seen: one plausible fill (the mean of what was seen), not the front's pixels.
    assert np.abs(back - back[0]).max() == 0
    assert np.abs(back[0] - colours[:n_front].astype(float).mean(axis=0)).max() <= 1


def test_colours_are_held_when_the_part_leaves_the_view_and_blend_when_seen_again():
    vertices, triangles = grid_plane(1.0, 0.1)
    track = VertexColourTrack(background=False)
    first = track.update(gradient(), project(vertices), vertices, triangles)
    away = vertices + np.array([5.0, 0.0, 0.0], np.float32)  # out of the image
    held = track.update(np.zeros((H, W, 3), np.uint8), project(away), away, triangles)
    np.testing.assert_array_equal(held, first)
    white = np.full((H, W, 3), 255, np.uint8)
    once = track.update(white, project(vertices), vertices, triangles).astype(int)
    assert (once > first.astype(int)).all() and (once < 255).any(), "a blend, not a jump"
    for _ in range(20):
        last = track.update(white, project(vertices), vertices, triangles)
    assert last.min() >= 250


def test_on_video_the_helper_thread_samples_and_the_stage_gets_the_newest_colours():
    vertices, triangles = grid_plane(1.0, 0.1)
    track = VertexColourTrack(background=True)
    try:
        first = track.update(gradient(), project(vertices), vertices, triangles)
        assert np.abs(first.astype(int) - first[0]).max() == 0, "nothing sampled yet: one fill"
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            later = track.update(gradient(), project(vertices), vertices, triangles)
            if np.abs(later.astype(int) - later[0]).max() > 20:
                break
            time.sleep(0.01)
        px = np.round(project(vertices)).astype(int)
        expected = gradient()[px[:, 1], px[:, 0]].astype(int)
        assert np.abs(later.astype(int) - expected).max() <= 3
    finally:
        track.close()


def test_vertices_off_the_person_mask_are_not_painted_with_the_background():
    """A fit a few pixels off at the silhouette projects edge vertices onto the background:
    with the person mask they do not take the background's colour; they continue the
    colours of the seen vertices beside them."""
    vertices, triangles = grid_plane(1.0, 0.1)
    uv = project(vertices)
    mask = np.zeros((H, W), np.float32)
    mask[:, : int(CX)] = 1.0  # the person covers the left half of the image only
    image = gradient()
    colours = VertexColourTrack(background=False).update(image, uv, vertices, triangles, mask)
    left = uv[:, 0] < CX - 4
    right = uv[:, 0] > CX + 1
    px = np.round(uv).astype(int)
    expected = image[px[:, 1], px[:, 0]].astype(int)
    assert np.abs(colours[left].astype(int) - expected[left]).max() <= 3
    # Blue grows with x in the gradient: the background right of the person is bluer than
    # anything on the person, and the off-person vertices must not have taken it.
    on_person_blue = colours[left][:, 0].astype(int).max()
    assert expected[right][:, 0].min() > on_person_blue + 5
    assert colours[right][:, 0].astype(int).max() <= on_person_blue + 2


def test_unseen_vertices_continue_their_seen_neighbours_then_take_the_mean():
    from engine.mesh_colours import fill_unseen, vertex_adjacency

    # A strip of 8 vertices in a row (triangles between two rows of 8); colours known only
    # on the first two columns (red) and nothing else.
    top = np.stack([np.arange(8), np.zeros(8)], axis=1)
    vertices = np.concatenate([top, top + [0, 1]]).astype(np.float32)
    tris = [[i, i + 1, i + 8] for i in range(7)] + [[i + 1, i + 9, i + 8] for i in range(7)]
    adjacency = vertex_adjacency(np.array(tris), len(vertices))
    colours = np.zeros((16, 3), np.float32)
    known = np.zeros(16, bool)
    known[[0, 1, 8, 9]] = True
    colours[known] = (0, 0, 200)
    filled = fill_unseen(colours, known, adjacency, rings=3)
    assert (filled[[2, 3, 4, 10, 11]] == (0, 0, 200)).all(), "near the seen ones: their colour"
    np.testing.assert_allclose(filled[7], (0, 0, 200))  # beyond the rings: the mean of the seen
    none = fill_unseen(colours, np.zeros(16, bool), adjacency)
    assert (none == none[0]).all()
