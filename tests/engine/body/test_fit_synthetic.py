"""Fit correctness without mediapipe: landmarks generated from Anny with known pose and shape."""
from __future__ import annotations

import numpy as np
import pytest

from engine.body.anny_kinematics import rodrigues, rotation_log
from engine.body.fit import AnnyFitter, FitSettings, Observation
from engine.body.fit_geometry import solve_translation, trunk_orientation
from engine.body.smoothing import RotationOneEuro
from engine.pinhole import PinholeCamera
from tests.engine.body.anny_synthetic import (
    BODY_JOINTS, anny_data, random_pose, root_relative_error_mm, synthesize,
)

CAMERA = PinholeCamera.from_fov(1280, 720, 60.0)


@pytest.fixture(scope="module")
def data():
    return anny_data()


def _random_case(rng, data):
    beta = rng.normal(0, 0.7, data.num_shape)
    root = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(2.5, 4.0)])
    return random_pose(rng, data), root, beta


def test_noise_free_fit_converges_exactly(data):
    # With (almost) no priors the fit must reproduce exact synthetic landmarks: this checks
    # the analytic Jacobians and the shape handling, not the priors' trade-offs.
    rng = np.random.default_rng(7)
    fitter = AnnyFitter(data, FitSettings(smoothing=False, iterations_first=40, prior_scale=0.01,
                                          shape_prior=0.1, robust_mm=1e9))
    local, root, beta = _random_case(rng, data)
    syn = synthesize(fitter, local, root, beta, CAMERA, rng, noise_px=0.0, noise_world_m=0.0, occluded=0)
    out = fitter.fit(syn.obs, with_mesh=False)
    assert out.rmse_px < 0.1
    assert np.abs(out.keypoints_3d - syn.truth.keypoints_3d).max() < 2e-3


def test_noisy_occluded_fits_recover_joints_within_20mm(data):
    rng = np.random.default_rng(11)
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    errors = []
    for _ in range(6):
        local, root, beta = _random_case(rng, data)
        syn = synthesize(fitter, local, root, beta, CAMERA, rng, noise_px=2.0, noise_world_m=0.015, occluded=4)
        fitter.reset()
        out = fitter.fit(syn.obs, with_mesh=False)
        errors.append(root_relative_error_mm(out.keypoints_3d, syn.truth.keypoints_3d, BODY_JOINTS))
        assert np.isfinite(out.rmse_px) and out.rmse_px < 6.0  # 2 px noise -> ~2.8 px RMS
    print(f"synthetic MPJPE (root-relative, 12 body joints): {np.round(errors, 1)} mm")
    assert np.mean(errors) < 20.0
    assert np.max(errors) < 30.0


def test_tracking_sequence_stays_accurate_and_accumulates_shape(data):
    rng = np.random.default_rng(3)
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    start, end = random_pose(rng, data), random_pose(rng, data)
    beta = rng.normal(0, 0.8, data.num_shape)
    root = np.array([0.1, 0.0, 3.0])
    errors, shape_err = [], []
    for i in range(12):
        w = i / 11
        # Interpolate each bone's rotation on the rotation group.
        local = start @ rodrigues(w * rotation_log(np.swapaxes(start, -1, -2) @ end))
        syn = synthesize(fitter, local, root, beta, CAMERA, rng, time=i / 30)
        out = fitter.fit(syn.obs, with_mesh=False)
        errors.append(root_relative_error_mm(out.keypoints_3d, syn.truth.keypoints_3d, BODY_JOINTS))
        shape_err.append(_rest_shape_error_mm(fitter, fitter.shape, beta))
    mean_shape_err = _rest_shape_error_mm(fitter, np.zeros_like(beta), beta)
    print(f"tracking MPJPE {np.round(errors, 1)} mm; shape error {np.round(shape_err, 1)} mm "
          f"(mean shape: {mean_shape_err:.1f} mm)")
    assert np.median(errors) < 20.0
    # The accumulated shape is much closer to the truth than the population mean is.
    assert shape_err[-1] < 0.5 * mean_shape_err


def _rest_shape_error_mm(fitter, beta_a, beta_b) -> float:
    """Mean distance (mm) between the landmarks of two shapes in the reference pose."""
    rest = np.broadcast_to(np.eye(3), (fitter.data.num_bones, 3, 3)).copy()
    dummy = Observation(np.zeros((33, 2)), np.ones(33), None, CAMERA)
    pts = [fitter.evaluate(rest, np.array([0, 0, 3.0]), b, dummy, np.ones(33, bool), with_mesh=False).keypoints_3d
           for b in (beta_a, beta_b)]
    return root_relative_error_mm(pts[0], pts[1], BODY_JOINTS)


def test_solve_translation_recovers_exact_translation():
    rng = np.random.default_rng(0)
    pts = rng.normal(0, 0.4, (20, 3))
    t = np.array([0.3, -0.2, 3.5])
    uv = CAMERA.project(pts + t).astype(np.float64)
    got = solve_translation(pts, uv, np.ones(20), CAMERA)
    np.testing.assert_allclose(got, t, atol=1e-4)
    assert solve_translation(pts, uv, np.zeros(20), CAMERA) is None


def test_trunk_orientation_recovers_a_rotation(data):
    rng = np.random.default_rng(1)
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    rest = np.broadcast_to(np.eye(3), (data.num_bones, 3, 3)).copy()
    syn = synthesize(fitter, rest, np.array([0, 0, 3.0]), np.zeros(data.num_shape), CAMERA, rng,
                     noise_px=0, noise_world_m=0, occluded=0)
    turn = rodrigues(np.array([0.2, 2.5, -0.3]))
    got = trunk_orientation(syn.obs.world @ turn.T)
    # Hips and shoulders are not exactly square in the reference pose: a few degrees.
    angle = np.linalg.norm(rotation_log(got.T @ turn))
    assert angle < np.radians(6)


def test_rotation_log_inverts_rodrigues_everywhere():
    rng = np.random.default_rng(5)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, np.pi - 1e-3, 195), [0.0, 1e-8, np.pi - 1e-7, np.pi, np.pi]])
    rot = rodrigues(axes * angles[:, None])
    back = rodrigues(rotation_log(rot))
    np.testing.assert_allclose(back, rot, atol=1e-6)


def test_rotation_filter_is_continuous_through_pi():
    # A steady turn through 180 degrees: component-wise filtering of rotation vectors would
    # jump at π; the filter on the rotation group follows with a small lag only.
    filt = RotationOneEuro(min_cutoff=1.5, beta=2.0)
    for i in range(60):
        truth = rodrigues(np.array([0.0, 2.0 + i * 0.04, 0.0]))[None]
        out = filt(truth, i / 30)
        lag = np.linalg.norm(rotation_log(np.swapaxes(out, -1, -2) @ truth))
        assert lag < 0.1
    still = rodrigues(np.array([[0.3, 0.1, 0.0]]))
    filt.reset()
    for i in range(5):
        np.testing.assert_allclose(filt(still, i / 30), still, atol=1e-9)


def test_smoothing_steadies_a_still_body_and_follows_a_moving_one(data):
    """Zero-lag filtering: less frame-to-frame jitter on a still body with noisy landmarks,
    and only a small lag on a body moving sideways at 1 m/s (30 fps)."""
    rng = np.random.default_rng(4)
    local = random_pose(rng, data)
    beta = rng.normal(0, 0.5, data.num_shape)

    def run(smoothing: bool, speed: float) -> tuple[float, float]:
        fitter = AnnyFitter(data, FitSettings(smoothing=smoothing))
        noise = np.random.default_rng(9)
        jitter, lag, previous = [], [], None
        for i in range(30):
            root = np.array([-0.5 + speed * i / 30, 0.0, 3.0])
            syn = synthesize(fitter, local, root, beta, CAMERA, noise, noise_px=2.0, occluded=0, time=i / 30)
            out = fitter.fit(syn.obs, with_mesh=False)
            if previous is not None and i >= 10:
                jitter.append(np.abs(np.diff([previous, out.keypoints_2d], axis=0)).mean())
            lag.append(np.linalg.norm(out.keypoints_2d - syn.truth.keypoints_2d, axis=1).mean())
            previous = out.keypoints_2d
        return float(np.mean(jitter)), float(np.mean(lag[10:]))

    raw_jitter, _ = run(False, 0.0)
    smooth_jitter, _ = run(True, 0.0)
    _, moving_error = run(True, 1.0)
    print(f"still: jitter {raw_jitter:.2f} px raw, {smooth_jitter:.2f} px smoothed; "
          f"moving 1 m/s: mean keypoint error {moving_error:.2f} px")
    assert smooth_jitter < 0.8 * raw_jitter  # 2 px landmark noise: 1.39 -> 1.00 px here
    assert moving_error < 4.0  # ~40 px per frame of motion; a frame of lag would be ~40 px
