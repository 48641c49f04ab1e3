"""Renderer math without GL: the 3D view at the default orbit must project camera-space
points exactly where the pinhole camera (and so the image overlay) puts them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.pinhole import PinholeCamera
from engine.render.geometry import bbox_center, incidence_matrix, thick_line_quads, vertex_normals
from engine.render.transforms import (Rect, fit_rect, image_to_ndc, nearest_index, orbit_eye, orbit_view, perspective,
                                      split_rect, vertical_fov)
from engine.render.view import OrbitCamera
from tests.engine.render.synthetic import icosphere


def ndc_to_pixels(ndc: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], axis=1)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    h = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ matrix.T
    return h[:, :3] / h[:, 3:4]


def test_image_to_ndc_maps_corners_and_centres():
    m = image_to_ndc(320, 240)
    corners = np.array([[0, 0, 0], [320, 240, 0], [160, 120, 0], [0.5, 0.5, 0]], np.float64)
    ndc = apply(m, corners)[:, :2]
    np.testing.assert_allclose(ndc, [[-1, 1], [1, -1], [0, 0], [-1 + 1 / 320, 1 - 1 / 240]], atol=1e-6)


def test_default_orbit_reproduces_the_pinhole_projection():
    width, height = 640, 480
    camera = PinholeCamera.from_fov(width, height, 60.0)
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-0.4, 0.4, 50), rng.uniform(-0.3, 0.3, 50), rng.uniform(1.0, 3.0, 50)])
    target = points.mean(axis=0)
    view = orbit_view(target, 0.0, 0.0, 1.0)
    fovy = 2 * math.atan(0.5 * height / camera.focal_px)
    projection = perspective(fovy, width / height, 0.1, 10.0)
    pixels = ndc_to_pixels(apply(projection @ view, points), width, height)
    np.testing.assert_allclose(pixels, camera.project(points), atol=1e-3)


def eye_in_camera_space(view: np.ndarray) -> np.ndarray:
    """Where a view matrix (camera space -> GL view) puts its eye, in camera space."""
    return apply(np.linalg.inv(view.astype(np.float64)), np.zeros((1, 3)))[0]


def test_orbit_directions():
    target = np.array([0.0, 0.0, 2.0])  # camera space, 2 m ahead
    np.testing.assert_allclose(eye_in_camera_space(orbit_view(target, 0, 0)), [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(eye_in_camera_space(orbit_view(target, 90, 0)), [2, 0, 2], atol=1e-5)  # right
    assert eye_in_camera_space(orbit_view(target, 0, 60))[1] < -1.0  # above (camera y points down)
    np.testing.assert_allclose(eye_in_camera_space(orbit_view(target, 0, 0, 0.5)), [0, 0, 1], atol=1e-6)
    assert orbit_eye(np.zeros(3), 0, 0, 1.0)[2] == pytest.approx(1.0)


def test_orbit_keeps_the_target_in_place():
    target = np.array([0.1, -0.2, 1.5])
    for yaw, pitch, distance in [(30, 10, 1.0), (-120, -45, 0.5), (180, 80, 2.0)]:
        p = apply(orbit_view(target, yaw, pitch, distance), target[None])[0]
        np.testing.assert_allclose(p, np.array([0.1, 0.2, -1.5]) * distance, atol=1e-5)
        eye = eye_in_camera_space(orbit_view(target, yaw, pitch, distance))
        assert np.linalg.norm(eye - target) == pytest.approx(np.linalg.norm(target) * distance, rel=1e-5)


def test_orbit_camera_clamps_and_wraps():
    cam = OrbitCamera().orbited(200.0, 120.0)
    assert cam.yaw_deg == pytest.approx(-160.0) and cam.pitch_deg == 89.0
    assert OrbitCamera().zoomed(100.0).distance == 0.1
    assert OrbitCamera(distance=2.0).zoomed(2.0).distance == pytest.approx(1.0)


def test_vertical_fov_and_rects():
    assert math.degrees(vertical_fov(90.0, 1.0)) == pytest.approx(90.0)
    assert math.degrees(vertical_fov(90.0, 2.0)) == pytest.approx(2 * math.degrees(math.atan(0.5)))
    assert fit_rect(Rect(0, 0, 640, 240), 320, 240) == Rect(160, 0, 320, 240)
    assert fit_rect(Rect(10, 20, 300, 300), 100, 50) == Rect(10, 95, 300, 150)
    assert split_rect(Rect(0, 0, 101, 50)) == (Rect(0, 0, 50, 50), Rect(50, 0, 51, 50))


def test_vertex_normals_of_a_sphere_are_radial():
    vertices, faces = icosphere(2)
    normals = vertex_normals(vertices * 0.3 + [1, 2, 3], faces)
    np.testing.assert_allclose(np.abs(np.sum(normals * vertices, axis=1)), 1.0, atol=2e-2)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert np.allclose(bbox_center(vertices * 0.3 + [1, 2, 3]), [1, 2, 3], atol=1e-6)


def test_nearest_yaw_wraps_around():
    yaws = np.array([-90.0, 0.0, 90.0])
    assert nearest_index(yaws, 80) == 2
    assert nearest_index(yaws, -100) == 0
    assert nearest_index(yaws, 200) == 0   # 200 = -160: 70 deg from -90, 110 from 90
    assert nearest_index(yaws, 359) == 1


def test_vertex_normals_follow_winding_and_weight_by_area():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [5, 5, 5]], np.float32)
    # A big triangle in the xy plane (normal +z) and a small one in the xz plane (normal +y:
    # (v3 - v0) x (v1 - v0) = z x x = y)
    # share vertices 0 and 1; vertex 4 is unused.
    faces = np.array([[0, 1, 2], [0, 3, 1]])
    normals = vertex_normals(vertices, faces)
    np.testing.assert_allclose(normals[2], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(normals[3], [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(normals[0], np.array([0, 1, 1]) / np.sqrt(2), atol=1e-6)  # equal areas
    np.testing.assert_array_equal(normals[4], [0, 0, 0])
    cached = vertex_normals(vertices, faces, incidence_matrix(faces, len(vertices)))
    np.testing.assert_allclose(cached, normals, atol=1e-7)


def test_thick_line_quads_cover_the_segment():
    corners, triangles = thick_line_quads(np.array([[10, 20], [30, 20]], np.float32), np.array([[0, 1]]), 1.5)
    assert corners.shape == (4, 2) and triangles.shape == (2, 3) and triangles.max() == 3
    np.testing.assert_allclose(corners.min(axis=0), [8.5, 18.5])
    np.testing.assert_allclose(corners.max(axis=0), [31.5, 21.5])
