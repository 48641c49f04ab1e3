"""Batched rotation conversions (torch): 6D -> matrix, axis-angle <-> matrix.

All functions accept any leading batch shape `...` and keep the input's dtype/device.
Rotation matrices act on column vectors (`x' = R @ x`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Below this angle (radians) the Rodrigues coefficients use their Taylor series:
# sin(t)/t and (1 - cos t)/t^2 lose all precision in float32 near t = 0.
_SMALL_ANGLE = 1e-4


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """Continuous 6D representation (Zhou et al. 2019) in SPIN's layout -> rotation matrices.

    x: (..., 6): the 6 numbers read as a 3x2 matrix, row-major, so column a1 is
        (x0, x2, x4) and column a2 is (x1, x3, x5) ([1, 0, 0, 1, 0, 0] is the identity).
    Returns (..., 3, 3) with columns b1, b2, b3: b1 = a1/|a1|, b2 = a2 minus its b1
    component, normalised, b3 = b1 x b2 (Gram-Schmidt).
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix [v]x, so that [v]x @ u = v x u."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    rows = (torch.stack((zero, -z, y), -1), torch.stack((z, zero, -x), -1), torch.stack((-y, x, zero), -1))
    return torch.stack(rows, dim=-2)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle (..., 3) (direction = axis, norm = angle in radians) -> (..., 3, 3).

    R = I + a [k]x + b [k]x^2 with k = aa (unnormalised), a = sin(t)/t, b = (1 - cos t)/t^2,
    which needs no axis normalisation and is exact at t = 0.
    """
    theta2 = (aa * aa).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = theta2.sqrt()
    small = theta < _SMALL_ANGLE
    safe = torch.where(small, torch.ones_like(theta), theta)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(safe)) / (safe * safe))
    k = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def rotmat_to_quaternion(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0.

    Uses the largest of the four diagonal combinations as the pivot (Shepperd's method),
    so the result is accurate for every angle including 180 degrees.
    """
    m = rotmat
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for i = w, x, y, z
    q_sq4 = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                         1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    pivot = q_sq4.argmax(dim=-1, keepdim=True)
    # Candidate quaternions (unnormalised, each scaled by 4*q_pivot) for each pivot choice.
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s21, s02, s10 = m[..., 2, 1] + m[..., 1, 2], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1]
    cand = torch.stack((
        torch.stack((q_sq4[..., 0], d21, d02, d10), -1),
        torch.stack((d21, q_sq4[..., 1], s10, s02), -1),
        torch.stack((d02, s10, q_sq4[..., 2], s21), -1),
        torch.stack((d10, s02, s21, q_sq4[..., 3]), -1),
    ), dim=-2)  # (..., 4 pivots, 4)
    q = torch.gather(cand, -2, pivot[..., None].expand(*pivot.shape[:-1], 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis-angle, angle in [0, pi]."""
    q = torch.where(q[..., :1] < 0, -q, q)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    small = sin_half < _SMALL_ANGLE
    # angle / sin(angle/2) -> 2 as the angle -> 0 (first-order: 2 + angle^2/12)
    scale = torch.where(small, 2 + angle * angle / 12, angle / torch.where(small, torch.ones_like(sin_half), sin_half))
    return q[..., 1:] * scale


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle (radians, angle in [0, pi])."""
    return quaternion_to_axis_angle(rotmat_to_quaternion(rotmat))
