"""FaceStage: back-end choice, results and their JSON, mesh export, lost faces, reset.

Landmarks come from the model itself (no mediapipe), so these tests are fast."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from engine.face import stage as stage_mod
from engine.face.fit import pose_deg, rotation_matrix
from engine.face.morphable import LinearFaceModel
from engine.face.stage import FaceSettings, FaceStage, choose_backend
from engine.frame import Frame
from engine.perception.result import PerceptionResult
from tests.engine.face.test_fit import synthetic_landmarks

W, H = 640, 480


@pytest.fixture(scope="module")
def model():
    return LinearFaceModel.from_anny()


@pytest.fixture(scope="module")
def landmarks(model):
    expr = np.zeros(model.num_expression)
    expr[model.expression_names.index("jawOpen")] = 0.4
    return synthetic_landmarks(model, rotation_matrix(10, -5, 3), 1400.0, np.array([330.0, 250.0, 0.0]),
                               np.zeros(model.num_identity), expr).astype(np.float32)


def _frame(i=0):
    return Frame(np.zeros((H, W, 3), np.uint8), i, i / 30.0, "synthetic:face")


def _ctx(lm):
    return {"perception": PerceptionResult((H, W), face_landmarks=lm)}


def test_auto_without_weights_uses_anny(caplog):
    with caplog.at_level(logging.WARNING):
        stage = FaceStage(FaceSettings(backend="auto"))
    assert stage.backend == "anny"
    warnings = [r for r in caplog.records if r.name == "engine.face.stage" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "offline default" in warnings[0].getMessage()


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="unknown face backend"):
        FaceStage(FaceSettings(backend="flame"))


class _Status:
    def __init__(self, name, installed):
        self.name, self.state = name, "installed" if installed else "missing"
        self.paths = {"checkpoint": "c", "param_stats": "p", "bfm": "b", "tri": "t"} if installed else {}
        self.message = "" if installed else f"{name} is not installed"


@pytest.mark.parametrize("installed, requested, expected", [
    ({"bfm-noneck-v3", "tddfa-mb05"}, "auto", "tddfa"),
    ({"bfm-noneck-v3", "tddfa-mb1"}, "auto", "tddfa"),
    ({"bfm-noneck-v3"}, "auto", "bfm"),
    ({"bfm-noneck-v3"}, "tddfa", "bfm"),
    ({"tddfa-mb05"}, "auto", "anny"),  # 3DDFA_V2 cannot run without the BFM
    (set(), "bfm", "anny"),
    ({"bfm-noneck-v3", "tddfa-mb05"}, "anny", "anny"),
])
def test_choose_backend(monkeypatch, installed, requested, expected):
    import engine.weights.store as store

    monkeypatch.setattr(store, "model_status", lambda name: _Status(name, name in installed))
    backend, paths = choose_backend(requested)
    assert backend == expected
    if backend == "tddfa":
        assert stage_mod.BFM_MODEL in paths and any(n in paths for n in stage_mod.TDDFA_MODELS)


def test_result_fields(model, landmarks):
    stage = FaceStage(FaceSettings(smoothing=False), model=model)
    for i in range(3):
        r = stage.process(_frame(i), _ctx(landmarks))
    v = model.num_vertices
    assert r.backend == "anny"
    assert r.vertices_image.shape == (v, 3) and r.vertices_image.dtype == np.float32
    assert r.vertices_camera.shape == (v, 3) and r.triangles.shape == model.triangles.shape
    assert r.landmarks_2d.shape == (68, 2) and r.expression.shape == (52,) and r.identity.shape == (40,)
    assert len(r.expression_names) == 52
    np.testing.assert_allclose(r.pose_deg, pose_deg(rotation_matrix(10, -5, 3)), atol=0.2)
    assert r.fit_rmse_px < 0.2
    # the 68 points are the model's points at mediapipe's iBUG-68 indices
    from engine.face.topology import MEDIAPIPE_TO_IBUG68
    np.testing.assert_allclose(r.landmarks_2d, landmarks[MEDIAPIPE_TO_IBUG68, :2], atol=0.5)
    # camera space: metres, in front of the camera, and its projection lands on the face
    from engine.pinhole import PinholeCamera
    cam = PinholeCamera.from_fov(W, H, 60.0)
    assert (r.vertices_camera[:, 2] > 0.1).all()
    face = model.landmark_vertices[:, 0]
    offset = np.median(cam.project(r.vertices_camera[face]) - r.vertices_image[face, :2], axis=0)
    assert np.abs(offset).max() < 5.0
    json.dumps(r.to_json())


def test_no_face_returns_none_and_recovers(model, landmarks):
    stage = FaceStage(FaceSettings(), model=model)
    assert stage.process(_frame(0), {}) is None
    assert stage.process(_frame(1), {"perception": PerceptionResult((H, W))}) is None
    assert stage.process(_frame(2), _ctx(landmarks)) is not None
    assert stage.process(_frame(3), _ctx(None)) is None
    r = stage.process(_frame(4), _ctx(landmarks))
    np.testing.assert_allclose(r.pose_deg, pose_deg(rotation_matrix(10, -5, 3)), atol=0.5)


def test_reset_forgets_identity(model, landmarks):
    stage = FaceStage(FaceSettings(fit=stage_mod.FitSettings(identity_frames=2)), model=model)
    for i in range(3):
        stage.process(_frame(i), _ctx(landmarks))
    assert stage._fitter.identity_frozen
    stage.reset()
    assert not stage._fitter.identity_frozen


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_export(model, landmarks, tmp_path, suffix):
    import trimesh

    stage = FaceStage(FaceSettings(export_dir=tmp_path, export_format=suffix), model=model)
    stage.request_export()
    r = stage.process(_frame(7), _ctx(landmarks))
    path = tmp_path / f"face_000007_anny{suffix}"
    assert path.exists()
    mesh = trimesh.load(path, process=False)
    assert len(mesh.vertices) == model.num_vertices
    # viewer axes: y up, z towards the viewer
    np.testing.assert_allclose(mesh.vertices[:, 1], -r.vertices_camera[:, 1], atol=1e-5)
    # one export per request
    stage.process(_frame(8), _ctx(landmarks))
    assert not (tmp_path / f"face_000008_anny{suffix}").exists()


def test_export_to_explicit_path_and_bad_suffix(model, landmarks, tmp_path):
    stage = FaceStage(FaceSettings(), model=model)
    with pytest.raises(ValueError):
        stage.request_export()  # no export_dir
    stage.request_export(tmp_path / "sub" / "mine.ply")
    stage.process(_frame(0), _ctx(landmarks))
    assert (tmp_path / "sub" / "mine.ply").exists()
    stage.request_export(tmp_path / "mine.stl")
    with pytest.raises(ValueError, match="cannot export"):
        stage.process(_frame(1), _ctx(landmarks))
