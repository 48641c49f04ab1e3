"""Head pose from 3DDFA_V2's camera matrix P (3x4): scale, rotation and (yaw, pitch, roll).

The angle rule is the official one (SPEC section A); angles are about the BFM model frame
(x right, y up, z towards the viewer) as the network's P maps it into the crop.
"""
from __future__ import annotations

import math

import numpy as np

# Beyond this |R[2, 0]| the decomposition is at gimbal lock and roll is set to 0.
GIMBAL_LIMIT = 0.998


def scale_and_rotation(p: np.ndarray) -> tuple[float, np.ndarray]:
    """P (3, 4) or its R (3, 3) -> (scale, (3, 3) float64 orthonormal rotation).

    scale is the mean norm of the first two rows of R; the rotation's rows are those two
    rows normalised and their cross product (the third row of P is not used).
    """
    r = np.asarray(p, np.float64)[:, :3]
    n1, n2 = np.linalg.norm(r[0]), np.linalg.norm(r[1])
    if n1 <= 0.0 or n2 <= 0.0:
        raise ValueError("degenerate camera matrix: a zero row")
    r1, r2 = r[0] / n1, r[1] / n2
    return float((n1 + n2) / 2.0), np.stack([r1, r2, np.cross(r1, r2)])


def rotation_to_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(3, 3) rotation -> (x, y, z) radians by the official rule, reported as (yaw, pitch, roll)."""
    r20 = float(rot[2, 0])
    if r20 > GIMBAL_LIMIT:
        return math.pi / 2, math.atan2(-rot[0, 1], -rot[0, 2]), 0.0
    if r20 < -GIMBAL_LIMIT:
        return -math.pi / 2, math.atan2(rot[0, 1], rot[0, 2]), 0.0
    x = math.asin(r20)
    c = math.cos(x)
    return x, math.atan2(rot[2, 1] / c, rot[2, 2] / c), math.atan2(rot[1, 0] / c, rot[0, 0] / c)


def pose_degrees(p: np.ndarray) -> np.ndarray:
    """P (3, 4) -> (3,) float32 (yaw, pitch, roll) in degrees."""
    _, rot = scale_and_rotation(p)
    return np.degrees(np.array(rotation_to_angles(rot))).astype(np.float32)
