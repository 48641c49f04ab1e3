"""HmrBodyEstimator end to end: seeded SPIN checkpoint + a small random SMPL-format model."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from engine.body.hmr_backend import HmrBodyEstimator, KeypointTable, keypoint_rmse
from engine.body.result import BodyResult
from engine.body.rotations import axis_angle_to_rotmat
from engine.body.smpl_io import SmplLayer, save_smpl_npz
from engine.body.smpl_topology import MEDIAPIPE_FROM_SMPL, SMPL_NUM_VERTICES, SMPL_PARENTS
from engine.pinhole import PinholeCamera
from engine.frame import Frame
from engine.perception.result import PerceptionResult
from tests.engine.body.smpl_random import random_smpl

H, W = 480, 640
JOINT_MAPPED = [i for i, s in enumerate(MEDIAPIPE_FROM_SMPL) if s.kind == "joint"]


MODEL = random_smpl(200, SMPL_PARENTS, seed=5)


@pytest.fixture(scope="module")
def estimator(unxz, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    smpl_path = tmp_path_factory.mktemp("smpl") / "random_smpl.npz"
    save_smpl_npz(MODEL, smpl_path)
    est = HmrBodyEstimator(unxz("reference/spin/spin_model_checkpoint.pt.xz"),
                           unxz("reference/spin/smpl_mean_params_standin.npz.xz"), smpl_path, device="cpu")
    yield est
    est.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return Frame(image=image, index=3, t_capture=0.0, source_id="test")


def _perception(rng_seed: int = 1) -> PerceptionResult:
    rng = np.random.default_rng(rng_seed)
    landmarks = np.column_stack([rng.uniform(250, 400, 33), rng.uniform(60, 440, 33), rng.normal(0, 20, 33)])
    visibility = np.ones(33, np.float32)
    visibility[[13, 25]] = 0.1  # left elbow, left knee not observed
    return PerceptionResult(image_size=(H, W), pose_landmarks=landmarks.astype(np.float32), pose_visibility=visibility)


def test_result_shapes_and_camera_consistency(estimator, frame):
    perception = _perception()
    result = estimator.process(frame, perception)
    assert isinstance(result, BodyResult) and result.backend == "hmr"
    assert result.vertices.shape == (200, 3) and result.vertices.dtype == np.float32
    assert result.faces.shape == (400, 3) and result.joints_3d.shape == (24, 3)
    assert result.keypoints_2d.shape == (33, 2) and result.keypoint_visible.shape == (33,)
    assert result.pose.shape == (24, 3) and result.shape.shape == (10,)
    assert result.translation.shape == (3,) and result.translation[2] > 0

    camera = PinholeCamera.from_fov(W, H, 60.0)
    assert result.camera_focal_px == pytest.approx(camera.focal_px)
    np.testing.assert_allclose(result.camera_center_px, [W / 2, H / 2])
    # Joint-mapped keypoints are the projected camera-space joints.
    idx = [MEDIAPIPE_FROM_SMPL[i].index for i in JOINT_MAPPED]
    np.testing.assert_allclose(result.keypoints_2d[JOINT_MAPPED], camera.project(result.joints_3d[idx]), atol=1e-3)
    np.testing.assert_allclose(result.joints_2d, camera.project(result.joints_3d), atol=1e-3)
    assert result.keypoints_3d.shape == (33, 3)
    np.testing.assert_allclose(result.keypoints_2d, camera.project(result.keypoints_3d), atol=1e-3)
    np.testing.assert_array_equal(result.keypoints_3d[JOINT_MAPPED], result.joints_3d[idx])

    # A 200-vertex model has no SMPL keypoint vertices: only joint keypoints are visible,
    # and of those only the observed ones.
    want_visible = np.zeros(33, bool)
    want_visible[JOINT_MAPPED] = True
    want_visible[[13, 25]] = False
    np.testing.assert_array_equal(result.keypoint_visible, want_visible)
    d = result.keypoints_2d[want_visible] - perception.pose_landmarks[want_visible, :2]
    assert result.fit_rmse_px == pytest.approx(float(np.sqrt((d ** 2).sum(1).mean())), rel=1e-5)
    json.dumps(result.to_json())


def test_mesh_is_the_model_posed_by_the_reported_parameters(estimator, frame):
    """Re-posing the same model with the result's own pose (axis-angle), shape and
    translation gives its vertices and joints: the reported parameters describe the mesh."""
    result = estimator.process(frame, _perception())
    layer = SmplLayer(MODEL, num_betas=10, dtype=torch.float64)
    rot = axis_angle_to_rotmat(torch.from_numpy(result.pose.astype(np.float64)))[None]
    out = layer(torch.from_numpy(result.shape.astype(np.float64))[None], rot,
                torch.from_numpy(result.translation.astype(np.float64))[None])
    np.testing.assert_allclose(result.vertices, out.vertices[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(result.joints_3d, out.joints[0].numpy(), atol=1e-4)


def test_box_sources(estimator, frame):
    assert estimator.process(frame, PerceptionResult(image_size=(H, W))) is None  # perception found nobody
    seg = np.zeros((H, W), np.float32)
    seg[100:400, 250:380] = 1.0
    center, scale = estimator.person_box(frame, PerceptionResult(image_size=(H, W), segmentation=seg))
    np.testing.assert_allclose(center, [315, 250])
    assert scale == pytest.approx(300 * 1.2 / 200)
    result = estimator.process(frame, PerceptionResult(image_size=(H, W), segmentation=seg))
    assert result is not None and np.isnan(result.fit_rmse_px)
    center, scale = estimator.person_box(frame, None)  # no perception: SPIN's centred default
    np.testing.assert_allclose(center, [W / 2, H / 2])
    assert scale == pytest.approx(W / 200)


def test_keypoint_table_reads_smpl_vertex_ids():
    table = KeypointTable.build(MEDIAPIPE_FROM_SMPL, SMPL_NUM_VERTICES, 24)
    rng = np.random.default_rng(0)
    joints, vertices = rng.normal(size=(24, 3)), rng.normal(size=(SMPL_NUM_VERTICES, 3))
    kp = table.gather(joints, vertices)
    np.testing.assert_array_equal(kp[0], vertices[332])  # nose
    np.testing.assert_array_equal(kp[7], vertices[583])  # left ear
    np.testing.assert_array_equal(kp[11], joints[16])  # left shoulder
    np.testing.assert_array_equal(kp[32], vertices[6617])  # right big toe
    assert table.exact.sum() == 33 - 6  # eye corners and mouth corners are stand-ins
    assert not table.exact[[1, 3, 4, 6, 9, 10]].any()


def test_keypoint_rmse():
    pred = np.array([[0.0, 0.0], [3.0, 4.0], [100.0, 100.0]])
    obs = np.zeros((3, 3))
    assert keypoint_rmse(pred, obs, np.array([True, True, False])) == pytest.approx(np.sqrt(12.5))
    assert np.isnan(keypoint_rmse(pred, obs, np.zeros(3, bool)))


def test_from_installed_needs_both_models(unxz, tmp_path, monkeypatch):
    from engine.body.hmr_backend import estimator_from_installed
    from engine.weights.fetch import import_file

    monkeypatch.setenv("HOLOCAP_WEIGHTS_DIR", str(tmp_path / "installed"))
    assert estimator_from_installed() is None  # nothing installed
    import_file(unxz("reference/spin/spin_model_checkpoint.pt.xz"), "spin", key="checkpoint")
    import_file(unxz("reference/spin/smpl_mean_params_standin.npz.xz"), "spin", key="mean_params")
    assert estimator_from_installed() is None  # SMPL still missing
    junk = tmp_path / "not_smpl.npz"
    np.savez(junk, nothing=np.zeros(3))
    import_file(junk, "smpl")
    assert estimator_from_installed() is None  # installed but not an SMPL model: refused, not crashed
    smpl_path = tmp_path / "random.npz"
    save_smpl_npz(MODEL, smpl_path)
    import_file(smpl_path, "smpl")
    assert isinstance(estimator_from_installed(), HmrBodyEstimator)


def test_crop_box_is_smoothed_over_time_and_reset(estimator, frame):
    estimator.reset()
    base = _perception()
    raw, used = [], []
    for i in range(12):
        shift = np.array([6.0 if i % 2 else -6.0, 0.0, 0.0], np.float32)  # jitter of +-6 px
        perception = PerceptionResult(image_size=(H, W), pose_landmarks=base.pose_landmarks + shift,
                                      pose_visibility=base.pose_visibility)
        f = Frame(frame.image, i, i / 30.0, "test")
        raw.append(estimator.person_box(f, perception)[0][0])
        used.append(estimator.crop_box(f, perception)[0][0])
    assert used[0] == pytest.approx(raw[0])  # the first box after a reset is used as it comes
    assert np.ptp(used[4:]) < 0.5 * np.ptp(raw[4:])
    estimator.reset()
    f = Frame(frame.image, 99, 5.0, "test")
    assert estimator.crop_box(f, base)[0][0] == pytest.approx(estimator.person_box(f, base)[0][0])
