"""Rotation conversions against independent closed forms (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.body.rotations import axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_axis_angle


def _rodrigues_np(axis: np.ndarray, angle: float) -> np.ndarray:
    """Reference: rotation about a unit axis, written out element by element."""
    x, y, z = axis
    c, s, t = math.cos(angle), math.sin(angle), 1 - math.cos(angle)
    return np.array([[t * x * x + c, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, t * z * z + c]])


def _random_axis_angles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(0, math.pi, size=n)
    return axes, angles


def test_axis_angle_to_rotmat_matches_closed_form():
    axes, angles = _random_axis_angles(200, 0)
    got = axis_angle_to_rotmat(torch.from_numpy(axes * angles[:, None])).numpy()
    want = np.stack([_rodrigues_np(a, t) for a, t in zip(axes, angles)])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_axis_angle_small_angles_and_batch_shape():
    aa = torch.tensor([[0.0, 0.0, 0.0], [1e-7, -2e-7, 3e-8], [0.0, 1e-5, 0.0]], dtype=torch.float64)
    got = axis_angle_to_rotmat(aa.reshape(1, 3, 3))
    assert got.shape == (1, 3, 3, 3)
    for i, v in enumerate(aa.numpy()):
        angle = float(np.linalg.norm(v))
        want = np.eye(3) if angle == 0 else _rodrigues_np(v / angle, angle)
        np.testing.assert_allclose(got[0, i].numpy(), want, atol=1e-15)


@pytest.mark.parametrize("angle_range", [(0.0, 3.0), (3.0, math.pi)])
def test_rotmat_to_axis_angle_round_trip(angle_range):
    rng = np.random.default_rng(1)
    axes, _ = _random_axis_angles(300, 2)
    angles = rng.uniform(*angle_range, size=300)
    aa = axes * angles[:, None]
    rot = np.stack([_rodrigues_np(a, t) for a, t in zip(axes, angles)])
    back = rotmat_to_axis_angle(torch.from_numpy(rot)).numpy()
    # Near pi, (axis, pi) and (-axis, pi) are the same rotation: compare matrices there.
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), angles, atol=1e-9)
    rebuilt = axis_angle_to_rotmat(torch.from_numpy(back)).numpy()
    np.testing.assert_allclose(rebuilt, rot, atol=1e-9)
    if angle_range[1] < 3.1:
        np.testing.assert_allclose(back, aa, atol=1e-9)


def test_rotmat_to_axis_angle_identity_and_half_turn():
    half_turn_x = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
    rot = torch.stack([torch.eye(3, dtype=torch.float64), half_turn_x])
    back = rotmat_to_axis_angle(rot).numpy()
    np.testing.assert_allclose(back[0], 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(back[1]), [math.pi, 0, 0], atol=1e-9)


def test_rot6d_layout_and_gram_schmidt():
    # [1, 0, 0, 1, 0, 0] is the identity in SPIN's interleaved layout.
    np.testing.assert_allclose(rot6d_to_rotmat(torch.tensor([1.0, 0, 0, 1, 0, 0])).numpy(), np.eye(3), atol=1e-7)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6))
    got = rot6d_to_rotmat(torch.from_numpy(x)).numpy()
    for xi, r in zip(x, got):
        a1, a2 = xi[0::2], xi[1::2]  # columns of the row-major 3x2 view
        b1 = a1 / np.linalg.norm(a1)
        b2 = a2 - b1.dot(a2) * b1
        b2 /= np.linalg.norm(b2)
        want = np.column_stack([b1, b2, np.cross(b1, b2)])
        np.testing.assert_allclose(r, want, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)
