"""The Anny fit at webcam framing: a face close-up with the shoulders at the bottom edge,
hips, arms and legs outside the image (mediapipe still reports them, as guesses).

Acceptance on the talking-head clip (410x412, 60° assumed field of view): a body on
>= 90 % of frames, median fit_rmse_px <= 8 over the visible landmarks, the root 0.3-3 m
in front of the camera and no part of the mesh behind it.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.body.anny_kinematics import rodrigues
from engine.body.fit import AnnyFitter, FitSettings, Observation
from engine.body.fit_geometry import depth_step_scale, in_view, refine_translation, translation_from_scale
from engine.body.stage import BodySettings, BodyStage, implausible_fit
from engine.pinhole import PinholeCamera
from engine.frame import Frame
from engine.perception.stage import PerceptionSettings, PerceptionStage
from tests.engine.body.anny_synthetic import anny_data, synthesize

WEBCAM = PinholeCamera.from_fov(640, 480, 60.0)


@pytest.fixture(scope="module")
def data():
    return anny_data()


def _close_up_pose(rng, data) -> np.ndarray:
    """Upright, turned a little, head and neck moved: a person at a webcam."""
    local = np.broadcast_to(np.eye(3), (data.num_bones, 3, 3)).copy()
    local[data.bone_index("root")] = rodrigues(np.array([0.0, rng.uniform(-0.3, 0.3), 0.0]))
    local[data.bone_index("neck01")] = rodrigues(rng.normal(0, 0.08, 3))
    local[data.bone_index("head")] = rodrigues(rng.normal(0, 0.2, 3))
    return local


def _close_up_root(fitter, local, beta, nose_depth: float) -> np.ndarray:
    """Root translation that puts the nose on the optical axis, nose_depth metres away,
    slightly above the image centre (so the shoulders fall near the bottom edge)."""
    dummy = Observation(np.zeros((33, 2)), np.ones(33), None, WEBCAM)
    at_origin = fitter.evaluate(local, np.zeros(3), beta, dummy, np.ones(33, bool), with_mesh=False)
    return np.array([0.0, -0.04, nose_depth]) - at_origin.keypoints_3d[0]


def test_head_and_shoulders_only_gives_a_body_in_front_with_small_error(data):
    rng = np.random.default_rng(21)
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    errors, depth_errors = [], []
    for _ in range(4):
        local = _close_up_pose(rng, data)
        beta = rng.normal(0, 0.5, data.num_shape)
        root = _close_up_root(fitter, local, beta, rng.uniform(0.45, 0.7))
        syn = synthesize(fitter, local, root, beta, WEBCAM, rng, noise_px=1.0, noise_world_m=0.015, occluded=0)
        seen = in_view(syn.obs.points_2d, WEBCAM, 0.02 * 480)
        # The framing this test is about: the face and shoulders in view, no hips.
        assert seen[:13].sum() >= 12 and not seen[23:].any()
        # mediapipe's guesses for what it cannot see: confident visibility, wrong places
        # (its world skeleton of a close-up is badly distorted).
        world = syn.obs.world + np.where(seen[:, None], 0.0, rng.normal(0, 0.2, (33, 3)))
        obs = Observation(syn.obs.points_2d, np.full(33, 0.9), world, WEBCAM)
        fitter.reset()
        out = fitter.fit(obs, with_mesh=True)
        assert out.visible.sum() == seen.sum()
        assert out.root[2] > 0.2 and out.vertices[:, 2].min() > 0.02
        errors.append(out.rmse_px)
        truth_depth = syn.truth.keypoints_3d[0, 2]
        depth_errors.append(abs(out.keypoints_3d[0, 2] - truth_depth) / truth_depth)
    print(f"close-up fit_rmse_px {np.round(errors, 2)}; relative nose depth error {np.round(depth_errors, 3)}")
    assert max(errors) < 3.0  # 1 px landmark noise
    # Size and distance trade off through the (unknown) shape: a larger head further away.
    assert max(depth_errors) < 0.2


def test_translation_start_from_size_and_refinement_never_behind_the_camera():
    rng = np.random.default_rng(3)
    pts = rng.normal(0, 0.1, (12, 3))  # a head-sized cloud about the root
    t = np.array([0.05, -0.02, 0.45])
    uv = WEBCAM.project(pts + t).astype(np.float64)
    start = translation_from_scale(pts, uv, np.ones(12), WEBCAM)
    assert start is not None and start[2] > 0.2
    got, err = refine_translation(pts, uv, np.ones(12), WEBCAM, start)
    np.testing.assert_allclose(got, t, atol=1e-4)
    assert err < 1e-3
    # A start behind the camera is not linearised (the projection is meaningless there).
    behind, err = refine_translation(pts, uv, np.ones(12), WEBCAM, np.array([0.0, 0.0, -2.0]))
    assert behind[2] == -2.0 and err == np.inf
    assert depth_step_scale(1.0, -3.0, 0.1) == pytest.approx(0.5 / 3.0)
    assert depth_step_scale(1.0, 0.5, 0.1) == 1.0


def test_implausible_fits_are_named(data):
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    rest = np.broadcast_to(np.eye(3), (data.num_bones, 3, 3)).copy()
    beta = np.zeros(data.num_shape)
    dummy = Observation(np.zeros((33, 2)), np.ones(33), None, WEBCAM)
    good = fitter.evaluate(rest, np.array([0.0, 0.0, 3.0]), beta, dummy, np.ones(33, bool), False)
    obs = Observation(good.keypoints_2d.astype(np.float64), np.ones(33), None, WEBCAM)
    visible = in_view(obs.points_2d, WEBCAM)
    assert implausible_fit(fitter.evaluate(rest, np.array([0.0, 0.0, 3.0]), beta, obs, visible, False), obs) == ""
    behind = fitter.evaluate(rest, np.array([0.0, 0.0, -3.0]), beta, obs, visible, False)
    assert "behind" in implausible_fit(behind, obs)
    shifted = fitter.evaluate(rest, np.array([0.6, 0.0, 3.0]), beta, obs, visible, False)
    assert "fit error" in implausible_fit(shifted, obs)


def test_talking_head_clip_subsample(shared_file, data):
    capture = cv2.VideoCapture(str(shared_file("media/talking_head.mp4")))
    perception = PerceptionStage(PerceptionSettings(face=False, segmentation=False))
    body = BodyStage(BodySettings(backend="anny"), model_data=data)
    rmse, depth, seen_frames = [], [], 0
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % 8 == 0:  # every 8th frame (tracking mode: the clip moves slowly)
                frame = Frame(image, index, index / 25.0, "talking_head")
                seen = perception.process(frame, {})
                if seen.pose_landmarks is not None:
                    seen_frames += 1
                    result = body.process(frame, {"perception": seen})
                    if result is not None:
                        rmse.append(result.fit_rmse_px)
                        depth.append(float(result.translation[2]))
                        assert result.vertices[:, 2].min() > 0.0  # no part behind the camera
                        assert np.isfinite(result.joints_2d).all() and np.abs(result.joints_2d).max() < 1e4
            index += 1
    finally:
        capture.release()
        perception.close()
    print(f"talking head: {len(rmse)}/{seen_frames} frames with a body, fit_rmse_px median "
          f"{np.median(rmse):.2f} p95 {np.percentile(rmse, 95):.2f}, root depth "
          f"{min(depth):.2f}-{max(depth):.2f} m")
    assert seen_frames >= 18
    assert len(rmse) >= 0.9 * seen_frames
    assert np.median(rmse) <= 8.0
    assert 0.3 <= min(depth) and max(depth) <= 3.0
