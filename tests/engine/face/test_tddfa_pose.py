"""Head pose from 3DDFA_V2's camera matrix: hand-built rotations give known angles."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.face.pose import pose_degrees, scale_and_rotation


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return {
        "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def _camera(rot: np.ndarray, scale: float = 4.6e-4) -> np.ndarray:
    p = np.zeros((3, 4))
    p[:, :3] = scale * rot
    p[2, :3] = [7.0, -3.0, 11.0]  # the third row is not used by the official rule
    p[:, 3] = [60.0, 68.0, -66.0]
    return p


@pytest.mark.parametrize(("axis", "deg", "expected"), [
    ("y", 30.0, (-30.0, 0.0, 0.0)),  # yaw = asin(R20) = asin(-sin 30)
    ("x", 20.0, (0.0, 20.0, 0.0)),
    ("z", -15.0, (0.0, 0.0, -15.0)),
])
def test_single_axis_rotations(axis, deg, expected):
    np.testing.assert_allclose(pose_degrees(_camera(_rot(axis, deg))), expected, atol=1e-4)


def test_scale_and_orthonormal_rotation():
    rot = _rot("z", 10) @ _rot("x", 25) @ _rot("y", -40)
    p = _camera(rot, scale=2.5)
    p[1, :3] *= 1.2  # rows of unequal norm: scale is their mean
    scale, r = scale_and_rotation(p)
    assert scale == pytest.approx(2.5 * 1.1)
    np.testing.assert_allclose(r, rot, atol=1e-12)


def test_gimbal_lock_branches():
    # R20 = 1 (rotation of -90 deg about y): x = +90, roll forced to 0.
    np.testing.assert_allclose(pose_degrees(_camera(_rot("y", -90))), (90.0, 0.0, 0.0), atol=1e-4)
    # R20 = -1 with a roll: y = atan2(R01, R02).
    rot = _rot("z", 30) @ _rot("y", 90)
    expected_y = math.degrees(math.atan2(rot[0, 1], rot[0, 2]))
    np.testing.assert_allclose(pose_degrees(_camera(rot)), (-90.0, expected_y, 0.0), atol=1e-4)
