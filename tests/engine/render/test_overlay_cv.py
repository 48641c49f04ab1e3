"""The CPU overlay (overlay.mp4): blends touch only what they should."""
import numpy as np

from engine.render import overlay_cv


def test_blend_where_tints_the_mask_and_nothing_else():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    before = image.copy()
    mask = np.zeros((60, 80), np.uint8)
    mask[10:20, 30:50] = 1
    mask[40, 5] = 1  # a second, far part: the bounding box spans both
    overlay_cv._blend_where(image, mask, (200, 100, 0), 0.25)
    want = 0.75 * before.astype(np.float64) + 0.25 * np.array([200, 100, 0])
    inside = mask.astype(bool)
    assert np.abs(image[inside].astype(np.float64) - want[inside]).max() <= 1.0
    assert np.array_equal(image[~inside], before[~inside])


def test_blend_where_with_an_empty_mask_changes_nothing():
    image = np.full((8, 8, 3), 77, np.uint8)
    overlay_cv._blend_where(image, np.zeros((8, 8), np.uint8), (0, 0, 255), 0.5)
    assert (image == 77).all()


def test_translucent_wireframe_draws_only_around_the_mesh():
    image = np.zeros((100, 100, 3), np.uint8)
    vertices = np.array([[40.0, 40.0], [60.0, 40.0], [50.0, 60.0], [np.nan, np.nan]], np.float32)
    overlay_cv._draw_wireframe_translucent(image, vertices, np.array([[0, 1, 2]]), 0.45)
    ys, xs = np.nonzero(image.any(axis=2))
    assert len(xs) > 0
    assert xs.min() >= 37 and xs.max() <= 63 and ys.min() >= 37 and ys.max() <= 63
    # Half-transparent: no pixel reaches the full wireframe colour.
    assert image.max() < max(overlay_cv.MESH_COLOUR)


def test_mesh_fill_leaves_out_triangles_at_or_behind_the_near_plane():
    # Two triangles side by side; the right one has a corner at the camera.
    pixels = np.array([[10, 10], [30, 10], [20, 30], [50, 10], [70, 10], [60, 30]], np.float32)
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    depth = np.array([2.0, 2.0, 2.0, 2.0, 0.01, 2.0], np.float32)
    image = np.zeros((40, 80, 3), np.uint8)
    overlay_cv.draw_mesh_fill(image, pixels, triangles, (0, 0, 200), 0.5, depth=depth, near=0.05)
    tinted = image.any(axis=2)
    assert tinted[15, 20] and not tinted[:, 40:].any()
    image[:] = 0
    overlay_cv.draw_mesh_fill(image, pixels, triangles, (0, 0, 200), 0.5)  # no depth: both drawn
    assert image.any(axis=2)[15, 60]
