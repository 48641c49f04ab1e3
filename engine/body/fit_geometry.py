"""Closed-form pieces of the body fit: projection, translation, trunk orientation, SPD solve.

Camera space: x right, y down, z forward, metres; pixels x right, y down.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from engine.body import topology as topo
from engine.camera import PinholeCamera

LH, RH = topo.PoseLandmark.LEFT_HIP, topo.PoseLandmark.RIGHT_HIP
LS, RS = topo.PoseLandmark.LEFT_SHOULDER, topo.PoseLandmark.RIGHT_SHOULDER


def project(points: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """points (K, 3) camera space -> pixels (K, 2) and d pixels / d point (K, 2, 3)."""
    z = np.maximum(points[:, 2], 1e-3)
    f = camera.focal_px
    uv = points[:, :2] / z[:, None] * f + np.array([camera.cx, camera.cy])
    jac = np.zeros((len(points), 2, 3))
    jac[:, 0, 0] = jac[:, 1, 1] = f / z
    jac[:, :, 2] = -(uv - np.array([camera.cx, camera.cy])) / z[:, None]
    return uv, jac


def solve_spd(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve h x = g for a symmetric positive definite h (N, N) by Cholesky.

    Not np.linalg.solve: OpenBLAS's threaded LU takes ~15 ms for N = 70 on a busy 2-core
    machine (threads spinning against each other), Cholesky ~0.1 ms."""
    return scipy.linalg.cho_solve(scipy.linalg.cho_factor(h, check_finite=False), g, check_finite=False)


def solve_translation(points: np.ndarray, uv: np.ndarray, weights: np.ndarray,
                      camera: PinholeCamera, min_depth: float = 0.3) -> np.ndarray | None:
    """Root translation t with pixels ≈ project(points + t), linear least squares.

    points: (K, 3) model points posed about a root at the origin; uv: (K, 2) observed pixels;
    weights: (K,) >= 0. Uses (u − cx)(Z + tz) = f (X + tx), linear in t. None when fewer
    than two points carry weight."""
    keep = weights > 0
    if keep.sum() < 2:
        return None
    p, w = points[keep], np.sqrt(weights[keep])
    du, dv = uv[keep, 0] - camera.cx, uv[keep, 1] - camera.cy
    f = camera.focal_px
    n = len(p)
    a = np.zeros((2 * n, 3))
    a[:n, 0], a[:n, 2] = f, -du
    a[n:, 1], a[n:, 2] = f, -dv
    b = np.concatenate([du * p[:, 2] - f * p[:, 0], dv * p[:, 2] - f * p[:, 1]])
    ww = np.concatenate([w, w])
    aw = a * ww[:, None]
    t = solve_spd(aw.T @ aw + 1e-9 * np.eye(3), aw.T @ (b * ww))
    if t[2] + p[:, 2].mean() < min_depth:
        return None
    return t


def trunk_orientation(world: np.ndarray) -> np.ndarray | None:
    """(3, 3) rotation taking the model's reference trunk (hips along +x, spine up along −y)
    onto the observed one, from world landmarks (K, 3); None if degenerate."""
    across = (world[LH] - world[RH]) + (world[LS] - world[RS])
    up = 0.5 * (world[LS] + world[RS]) - 0.5 * (world[LH] + world[RH])
    if np.linalg.norm(across) < 1e-6 or np.linalg.norm(up) < 1e-6:
        return None
    x = across / np.linalg.norm(across)
    down = -up - np.dot(-up, x) * x
    if np.linalg.norm(down) < 1e-6:
        return None
    y = down / np.linalg.norm(down)
    return np.stack([x, y, np.cross(x, y)], axis=1)
