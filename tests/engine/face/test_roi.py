"""3DDFA_V2 ROI and crop rules, checked against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.face.roi import (crop_zero_padded, network_crop, normalise_crop, roi_area, roi_from_box,
                             roi_from_landmarks, round_roi)


def test_roi_from_box_by_hand():
    # w = 100, h = 140: old = 120, centre (150, 270 + 0.14 * 120 = 286.8), side int(189.6) = 189.
    roi = roi_from_box([100.0, 200.0, 200.0, 340.0, 0.99])
    np.testing.assert_allclose(roi, [150 - 94.5, 286.8 - 94.5, 150 + 94.5, 286.8 + 94.5], atol=1e-9)
    assert roi.dtype == np.float64


def test_roi_side_is_truncated_not_rounded():
    # old = 10: 1.58 * 10 = 15.8 -> 15.
    roi = roi_from_box(np.array([0, 0, 10, 10], np.float32))
    assert roi[2] - roi[0] == pytest.approx(15.0)


def test_roi_from_landmarks_by_hand():
    pts = np.array([[10.0, 20.0], [50.0, 30.0], [30.0, 80.0]])  # bbox 40 x 60, centre (30, 50)
    side = math.sqrt(2) * 60
    np.testing.assert_allclose(roi_from_landmarks(pts), [30 - side / 2, 50 - side / 2, 30 + side / 2, 50 + side / 2])
    assert roi_area(roi_from_landmarks(pts)) == pytest.approx(2 * 3600)
    assert roi_area(np.array([5.0, 5.0, 4.0, 9.0])) == 0.0


def test_round_half_to_even():
    assert round_roi(np.array([0.5, 1.5, 2.5, -0.5])) == (0, 2, 2, 0)


def test_zero_padded_crop_at_the_borders():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    crop = crop_zero_padded(image, np.array([-2.0, -1.0, 3.0, 7.0]))
    assert crop.shape == (8, 5, 3)
    np.testing.assert_array_equal(crop[1:6, 2:5], image[0:5, 0:3])
    assert not crop[0].any() and not crop[6:].any() and not crop[:, :2].any()
    # Beyond the right/bottom edges, and entirely outside the image.
    crop = crop_zero_padded(image, np.array([4.0, 3.0, 8.0, 6.0]))
    np.testing.assert_array_equal(crop[:2, :2], image[3:5, 4:6])
    assert not crop[2:].any() and not crop[:, 2:].any()
    assert not crop_zero_padded(image, np.array([10.0, 10.0, 14.0, 12.0])).any()


def test_network_input_scaling():
    image = np.full((240, 200, 3), (0, 128, 255), np.uint8)
    crop = network_crop(image, np.array([10.0, 10.0, 250.0, 250.0]))
    assert crop.shape == (120, 120, 3) and crop.dtype == np.uint8
    x = normalise_crop(crop)
    assert x.shape == (3, 120, 120) and x.dtype == np.float32
    # BGR stays BGR: channel 0 is blue = 0 -> -127.5/128; channel 2 is 255 -> 127.5/128.
    np.testing.assert_allclose(x[:, 60, 20], [-127.5 / 128, 0.5 / 128, 127.5 / 128])
    # The right part of this ROI lies outside the image: zeros there.
    np.testing.assert_allclose(x[:, 60, 119], [-127.5 / 128] * 3)
    with pytest.raises(ValueError):
        network_crop(image, np.array([5.0, 5.0, 5.2, 5.2]))
