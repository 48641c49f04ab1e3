"""Closed-form pieces of the body fit: projection, translation, trunk orientation, SPD solve.

Camera space: x right, y down, z forward, metres; pixels x right, y down.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from engine.body import topology as topo
from engine.pinhole import PinholeCamera

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


def in_view(points_2d: np.ndarray, camera: PinholeCamera, border_px: float = 0.0) -> np.ndarray:
    """(K,) bool: which pixels (K, 2) lie inside the image, at least border_px from its edges.

    mediapipe reports every landmark, also those outside the frame (their position is a
    guess from the visible body, and their visibility is sometimes high)."""
    u, v = points_2d[:, 0], points_2d[:, 1]
    return ((u >= border_px) & (u <= camera.width - border_px)
            & (v >= border_px) & (v <= camera.height - border_px) & np.isfinite(points_2d).all(axis=1))


def translation_from_scale(points: np.ndarray, uv: np.ndarray, weights: np.ndarray,
                           camera: PinholeCamera) -> np.ndarray | None:
    """Root translation from the size and centre of the observed points (weak perspective).

    points: (K, 3) model points posed about a root at the origin; uv: (K, 2) pixels;
    weights: (K,) >= 0. Depth z = f · (model spread in x, y) / (pixel spread), both RMS
    about the weighted centroids; then x, y put the centroid on the observed one. A start
    for refine_translation that cannot land behind the camera; None when fewer than two
    points carry weight or they coincide."""
    keep = weights > 0
    if keep.sum() < 2:
        return None
    w = weights[keep] / weights[keep].sum()
    p, q = points[keep], uv[keep]
    p_mean, q_mean = w @ p, w @ q
    spread_model = np.sqrt(w @ np.sum((p[:, :2] - p_mean[:2]) ** 2, axis=1))
    spread_px = np.sqrt(w @ np.sum((q - q_mean) ** 2, axis=1))
    if spread_px < 1e-6 or spread_model < 1e-6:
        return None
    z = camera.focal_px * spread_model / spread_px
    centre = np.array([camera.cx, camera.cy])
    xy = (q_mean - centre) * z / camera.focal_px
    return np.array([xy[0] - p_mean[0], xy[1] - p_mean[1], z - p_mean[2]])


def refine_translation(points: np.ndarray, uv: np.ndarray, weights: np.ndarray,
                       camera: PinholeCamera, start: np.ndarray, iterations: int = 5,
                       min_depth: float = 0.1) -> tuple[np.ndarray, float]:
    """Gauss-Newton on the pixel reprojection error over the translation t alone.

    points (K, 3) about the root at the origin, uv (K, 2) pixels, weights (K,) >= 0,
    start (3,) metres. Each step is shortened so that no weighted point comes nearer
    than min_depth (metres) or halves its depth: the projection is never linearised
    behind the camera. Returns t (3,) and the weighted RMS pixel error; a start with a
    weighted point at or behind the camera plane is returned as it is, with error inf."""
    keep = weights > 0
    p, q, w = points[keep], uv[keep], weights[keep]
    t = np.asarray(start, np.float64).copy()
    if np.any(p[:, 2] + t[2] <= 0):
        return t, np.inf

    def rms(tt: np.ndarray) -> float:
        proj, _ = project(p + tt, camera)
        return float(np.sqrt(w @ np.sum((proj - q) ** 2, axis=1) / w.sum()))

    for _ in range(iterations):
        proj, jac = project(p + t, camera)
        r = ((proj - q) * np.sqrt(w)[:, None]).ravel()
        j = (jac * np.sqrt(w)[:, None, None]).reshape(-1, 3)
        h = j.T @ j
        h[np.diag_indices(3)] *= 1.0 + 1e-3
        step = -solve_spd(h + 1e-9 * np.eye(3), j.T @ r)
        depth = p[:, 2] + t[2]
        floor = np.maximum(0.5 * depth, min_depth)
        if step[2] < 0:
            room = np.min(depth - floor)
            if room <= 0:
                break
            step *= min(1.0, room / -step[2])
        t = t + step
        if np.linalg.norm(step) < 1e-4:  # 0.1 mm: converged
            break
    return t, rms(t)


def depth_step_scale(depth: float, step: float, min_depth: float) -> float:
    """Fraction (0, 1] of a Gauss-Newton step to take so that a depth (metres) changed by
    `step` stays at least max(depth / 2, min_depth): the linearised projection is only
    trusted near the current depth, never across the camera plane."""
    floor = max(0.5 * depth, min_depth)
    if step >= 0 or depth + step >= floor:
        return 1.0
    return max(depth - floor, 0.0) / -step


def upright_residual(root_rot: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Residual (3,) and its Jacobian (3, 3) w.r.t. a world-frame rotation increment ω of
    the root (R ← exp(ω) R) for "the trunk is upright": the model's down axis (its +y,
    R[:, 1]) along the camera's down axis (+y). |r| ≈ weight · tilt angle (radians);
    turning about the vertical axis costs nothing."""
    down = root_rot[:, 1]
    r = weight * (down - np.array([0.0, 1.0, 0.0]))
    # d(R e_y) = ω × (R e_y) = −skew(R e_y) ω
    jac = np.zeros((3, 3))
    jac[0, 1], jac[0, 2] = down[2], -down[1]
    jac[1, 0], jac[1, 2] = -down[2], down[0]
    jac[2, 0], jac[2, 1] = down[1], -down[0]
    return r, weight * jac


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
