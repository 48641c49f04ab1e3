"""BodyStage: back-end choice, results and their JSON, mesh export, reset (no mediapipe)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from engine.body.fit import AnnyFitter, FitSettings
from engine.body.stage import BodySettings, BodyStage
from engine.pinhole import PinholeCamera
from engine.frame import Frame
from engine.perception.result import PerceptionResult
from tests.engine.body.anny_synthetic import anny_data, random_pose, synthesize

W, H = 1280, 720


@pytest.fixture(scope="module")
def data():
    return anny_data()


@pytest.fixture(scope="module")
def perception(data):
    """A PerceptionResult whose pose landmarks come from a posed Anny (60° camera)."""
    rng = np.random.default_rng(2)
    fitter = AnnyFitter(data, FitSettings(smoothing=False))
    syn = synthesize(fitter, random_pose(rng, data), np.array([0.1, 0.05, 3.2]),
                     rng.normal(0, 0.5, data.num_shape), PinholeCamera.from_fov(W, H, 60.0), rng)
    pts = np.concatenate([syn.obs.points_2d, np.zeros((33, 1))], 1).astype(np.float32)
    return PerceptionResult((H, W), pose_landmarks=pts, pose_visibility=syn.obs.visibility.astype(np.float32),
                            pose_world=syn.obs.world.astype(np.float32))


def _frame(index=0):
    return Frame(np.zeros((H, W, 3), np.uint8), index, index / 30.0, "synthetic:body")


def test_auto_without_weights_uses_anny(data):
    # conftest points the weights dir at an empty temp dir: HMR is "missing".
    stage = BodyStage(BodySettings(backend="auto"), model_data=data)
    assert stage.backend == "anny"
    with pytest.raises(ValueError):
        BodyStage(BodySettings(backend="smplx"), model_data=data)


def test_process_returns_a_complete_result(data, perception):
    stage = BodyStage(BodySettings(backend="anny"), model_data=data)
    result = stage.process(_frame(), {"perception": perception})
    assert result is not None and result.backend == "anny"
    assert result.vertices.shape == (data.num_vertices, 3) and result.vertices.dtype == np.float32
    assert result.faces.shape == (len(data.faces), 3)
    assert result.joints_3d.shape == (data.num_bones, 3) and result.joints_2d.shape == (data.num_bones, 2)
    assert result.keypoints_2d.shape == (33, 2) and result.keypoint_visible.shape == (33,)
    assert result.pose.shape == (data.num_bones, 3) and result.shape.shape == (data.num_shape,)
    assert result.fit_rmse_px < 6.0  # synthetic landmarks with 2 px noise
    # The mesh is in camera space in front of the camera, and projects onto the landmarks.
    assert result.vertices[:, 2].min() > 1.0
    uv = result.vertices[:, :2] / result.vertices[:, 2:] * result.camera_focal_px + result.camera_center_px
    lo, hi = perception.pose_landmarks[:, :2].min(0), perception.pose_landmarks[:, :2].max(0)
    assert np.all(uv.min(0) < lo + 20) and np.all(uv.max(0) > hi - 20)
    record = json.loads(json.dumps(result.to_json()))
    assert {"keypoints_2d", "fit_rmse_px", "shape"} <= set(record)
    assert len(record["keypoints_2d"]) == 33 and len(record["shape"]) == data.num_shape


def test_hmr_without_weights_falls_back_to_anny(data, caplog):
    with caplog.at_level("WARNING"):
        stage = BodyStage(BodySettings(backend="hmr"), model_data=data)
    assert stage.backend == "anny"
    assert any("hmr" in r.getMessage().lower() for r in caplog.records)


def test_no_pose_or_too_little_visible_gives_none(data, perception):
    stage = BodyStage(BodySettings(backend="anny"), model_data=data)
    assert stage.process(_frame(), {}) is None
    assert stage.process(_frame(), {"perception": PerceptionResult((H, W))}) is None
    hidden = dataclasses.replace(perception, pose_visibility=np.where(np.arange(33) < 5, 0.9, 0.1).astype(np.float32))
    assert stage.process(_frame(), {"perception": hidden}) is None


def test_mesh_export_on_request(tmp_path, data, perception):
    import trimesh

    stage = BodyStage(BodySettings(backend="anny", export_dir=tmp_path / "meshes"), model_data=data)
    stage.request_export()
    stage.process(_frame(7), {"perception": perception})
    files = list((tmp_path / "meshes").glob("*.obj"))
    assert [f.name for f in files] == ["body_000007_anny.obj"]
    mesh = trimesh.load(files[0], process=False)
    assert len(mesh.vertices) == data.num_vertices
    stage.process(_frame(8), {"perception": perception})
    assert len(list((tmp_path / "meshes").glob("*.obj"))) == 1  # one export per request
    stage.request_export(tmp_path / "one.ply")
    stage.process(_frame(9), {"perception": perception})
    assert (tmp_path / "one.ply").exists()
    with pytest.raises(ValueError):
        BodyStage(BodySettings(backend="anny"), model_data=data).request_export()


def test_reset_forgets_warm_start_and_shape(data, perception):
    stage = BodyStage(BodySettings(backend="anny"), model_data=data)
    first = stage.process(_frame(0), {"perception": perception})
    second = stage.process(_frame(1), {"perception": perception})
    assert np.abs(second.shape).sum() > 0
    stage.reset()
    again = stage.process(_frame(0), {"perception": perception})
    np.testing.assert_allclose(again.keypoints_2d, first.keypoints_2d, atol=1e-4)
