"""SPIN crop and camera conversions: geometry checks with exact expectations."""
from __future__ import annotations

import numpy as np
import torch

from engine.body.hmr import (BOX_UNIT_PX, CROP_FOCAL_PX, CROP_RES, box_from_landmarks, box_from_xyxy, crop_affine,
                             crop_image, crop_translation, crops_to_input, image_translation, normalize_imagenet)


def _project(points: np.ndarray, focal: float, principal: np.ndarray) -> np.ndarray:
    return points[:, :2] / points[:, 2:3] * focal + principal


def test_crop_affine_maps_box_to_crop():
    center, scale = np.array([300.0, 220.0]), 1.7
    m = crop_affine(center, scale)
    half = BOX_UNIT_PX * scale / 2
    corners = np.array([[center[0] - half, center[1] - half, 1], [center[0] + half, center[1] + half, 1],
                        [center[0], center[1], 1]])
    np.testing.assert_allclose(corners @ m.T, [[0, 0], [CROP_RES, CROP_RES], [CROP_RES / 2, CROP_RES / 2]], atol=1e-9)


def test_crop_image_puts_a_point_where_the_affine_says():
    # A smooth blob, so sampling keeps its centroid; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
    spot = np.array([202.3, 151.7])
    ys, xs = np.mgrid[0:360, 0:480]
    blob = np.exp(-((xs + 0.5 - spot[0]) ** 2 + (ys + 0.5 - spot[1]) ** 2) / (2 * 4.0 ** 2))
    image = np.zeros((360, 480, 3), np.uint8)
    image[..., 0] = np.round(255 * blob)
    center, scale = np.array([230.0, 170.0]), 0.9
    crop = crop_image(image, center, scale)
    assert crop.shape == (CROP_RES, CROP_RES, 3) and crop.dtype == np.uint8
    w = crop[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:CROP_RES, 0:CROP_RES]
    centroid = np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()]) / w.sum()
    np.testing.assert_allclose(centroid, crop_affine(center, scale) @ [*spot, 1.0], atol=0.02)
    assert crop[..., 0].max() > 200 and crop[..., 2].max() == 0  # channel order kept (BGR in, BGR out)


def test_crop_outside_the_image_is_black():
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_image(image, np.array([0.0, 0.0]), 1.0)  # 200 px box centred on the top-left corner
    # The image spans crop pixels [112, 224): black before, image values inside.
    assert crop[:111, :].max() == 0 and crop[:, :111].max() == 0 and crop[114:220, 114:220].min() == 200


def test_crops_to_input_is_rgb_imagenet():
    crops = np.zeros((2, CROP_RES, CROP_RES, 3), np.uint8)
    crops[1, ..., 2] = 255  # red in BGR
    x = crops_to_input(crops)
    assert x.shape == (2, 3, CROP_RES, CROP_RES) and x.dtype == torch.float32
    rgb = np.zeros((2, 3, CROP_RES, CROP_RES), np.float32)
    rgb[1, 0] = 1.0
    np.testing.assert_allclose(x.numpy(), normalize_imagenet(torch.from_numpy(rgb)).numpy(), atol=1e-6)


def test_boxes():
    pts = np.array([[100, 50], [300, 450], [200, 250], [900, 900]], np.float64)
    vis = np.array([1.0, 0.9, 0.8, 0.1])
    center, scale = box_from_landmarks(pts, vis, rescale=1.2)
    np.testing.assert_allclose(center, [200, 250])
    assert np.isclose(scale, 400 * 1.2 / 200)
    assert box_from_landmarks(pts, np.array([1.0, 0, 0, 0])) is None
    center, scale = box_from_xyxy(np.array([10, 20, 110, 320]), rescale=1.0)
    np.testing.assert_allclose(center, [60, 170])
    assert np.isclose(scale, 1.5)


def test_image_translation_matches_weak_perspective_at_zero_depth():
    rng = np.random.default_rng(0)
    cam = np.array([0.9, 0.05, -0.12])
    center, scale = np.array([410.0, 260.0]), 2.3
    focal, principal = 900.0, np.array([320.0, 240.0])
    t = image_translation(cam, center, scale, focal, principal)
    points = np.column_stack([rng.uniform(-0.8, 0.8, size=(50, 2)), np.zeros(50)])
    weak = center + cam[0] * (points[:, :2] + cam[1:]) * BOX_UNIT_PX * scale / 2
    np.testing.assert_allclose(_project(points + t, focal, principal), weak, atol=1e-9)
    # The crop's own camera is the special case "full image = crop": SPIN's translation.
    crop_t = image_translation(cam, np.array([112.0, 112.0]), CROP_RES / BOX_UNIT_PX, CROP_FOCAL_PX,
                               np.array([112.0, 112.0]))
    np.testing.assert_allclose(crop_t, crop_translation(cam), rtol=1e-9)
    np.testing.assert_allclose(crop_translation(cam), [0.05, -0.12, 2 * 5000 / (224 * 0.9 + 1e-9)])


def test_image_translation_is_batched():
    cams = np.array([[0.9, 0.1, 0.2], [1.2, -0.1, 0.0]])
    both = image_translation(cams, np.array([100.0, 80.0]), 1.0, 500.0, np.array([64.0, 48.0]))
    one = image_translation(cams[1], np.array([100.0, 80.0]), 1.0, 500.0, np.array([64.0, 48.0]))
    assert both.shape == (2, 3)
    np.testing.assert_allclose(both[1], one)
