"""PointHMR back-end: the estimator on seeded weights and the repository's reference mesh
stand-ins, its loaders' refusals, and the stage's fallback without weights."""
from __future__ import annotations

import pickle
import zipfile

import cv2
import numpy as np
import pytest
import torch

from engine.body.pointhmr import PointHmr, load_mesh_arrays, load_pointhmr
from engine.body.pointhmr_backend import PointHmrBodyEstimator
from engine.body.smpl_io import save_smpl_npz
from engine.body.smpl_topology import SMPL_NUM_VERTICES, SMPL_PARENTS
from engine.body.stage import BodySettings, BodyStage
from engine.frame import Frame
from engine.nets.seeded import seeded_state_dict
from engine.perception.result import PerceptionResult
from engine.pinhole import PinholeCamera
from engine.weights.probe import probe_model
from tests.conftest import REPO
from tests.engine.body.smpl_random import random_smpl

REF = REPO / "tests/data/pointhmr_reference"
H, W = 480, 640


def _mesh_paths() -> dict[str, object]:
    return {"mesh_downsampling": REF / "mesh_downsampling.npz", "adjmat_indices": REF / "smpl_431_adjmat_indices.pt",
            "adjmat_values": REF / "smpl_431_adjmat_values.pt", "adjmat_size": REF / "smpl_431_adjmat_size.pt"}


@pytest.fixture(scope="module")
def mesh():
    return load_mesh_arrays(*_mesh_paths().values())


@pytest.fixture(scope="module")
def files(mesh, tmp_path_factory):
    out = tmp_path_factory.mktemp("pointhmr")
    state = seeded_state_dict(PointHmr(mesh).state_dict(), 5)
    # A camera scale well above zero, so that the body lies in front of the camera.
    state["transformer.cam_predictor.bias"][0] += 20.0
    torch.save({f"module.{k}": v for k, v in state.items()}, out / "PointHMR_test.bin")  # as saved from DataParallel
    save_smpl_npz(random_smpl(SMPL_NUM_VERTICES, SMPL_PARENTS, seed=3), out / "smpl.npz")
    return {"checkpoint": out / "PointHMR_test.bin", "smpl": out / "smpl.npz", **_mesh_paths()}


@pytest.fixture(scope="module")
def estimator(files):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    est = PointHmrBodyEstimator(files, files["smpl"], device="cpu")
    yield est
    est.close()
    torch.set_num_threads(threads)


def _frame() -> Frame:
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return Frame(image=image, index=1, t_capture=0.0, source_id="test")


def _perception() -> PerceptionResult:
    rng = np.random.default_rng(1)
    landmarks = np.column_stack([rng.uniform(250, 400, 33), rng.uniform(60, 440, 33), np.zeros(33)])
    return PerceptionResult(image_size=(H, W), pose_landmarks=landmarks.astype(np.float32),
                            pose_visibility=np.ones(33, np.float32))


def test_estimator_gives_an_smpl_body_in_the_image_camera(estimator, files):
    result = estimator.process(_frame(), _perception())
    assert result is not None and result.backend == "pointhmr"
    assert result.vertices.shape == (SMPL_NUM_VERTICES, 3) and result.faces.shape[1] == 3
    assert result.pose.shape == (0, 3) and result.shape.shape == (0,)
    assert result.translation[2] > 0 and np.isfinite(result.keypoints_2d).all()
    # The 24 joints are the SMPL file's regressor applied to the predicted vertices.
    regressor = random_smpl(SMPL_NUM_VERTICES, SMPL_PARENTS, seed=3).J_regressor
    np.testing.assert_allclose(result.joints_3d, regressor @ result.vertices, atol=1e-4)
    camera = PinholeCamera.from_fov(W, H, 60.0)
    np.testing.assert_allclose(result.keypoints_2d, camera.project(result.keypoints_3d), atol=1e-3)
    assert np.isfinite(result.fit_rmse_px)


def test_estimator_output_is_the_network_output(estimator):
    crop = torch.zeros(1, 3, 224, 224)
    vertices, joints, cam, _, _ = estimator.predict(crop)
    with torch.inference_mode():
        out = estimator.regressor(crop)
    np.testing.assert_array_equal(vertices, out.vertices[0].numpy())
    np.testing.assert_array_equal(cam, out.cam[0].double().numpy())


def test_a_body_model_that_is_not_smpl_is_refused(files, tmp_path):
    save_smpl_npz(random_smpl(200, SMPL_PARENTS, seed=1), tmp_path / "small.npz")
    with pytest.raises(ValueError, match="200 vertices; PointHMR predicts SMPL's 6890"):
        PointHmrBodyEstimator(files, tmp_path / "small.npz")


def test_checkpoint_with_wrong_keys_or_shapes_is_refused(mesh, tmp_path):
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.bin")
    with pytest.raises(ValueError, match=r"not a PointHMR checkpoint .*unexpected \['fc.weight'\]"):
        load_pointhmr(tmp_path / "other.bin", mesh)
    state = seeded_state_dict(PointHmr(mesh).state_dict(), 1)
    state["cam_layer.weight"] = torch.zeros(1, 430)
    with pytest.raises(ValueError, match=r"wrong shapes \['cam_layer.weight'\]"):
        load_pointhmr(state, mesh)


class _Code:
    def __reduce__(self):
        return (print, ("this must not run",))


def test_mesh_file_that_would_run_code_is_refused(tmp_path, capsys):
    bad = np.empty(2, dtype=object)
    bad[0], bad[1] = _Code(), _Code()
    np.savez(tmp_path / "mesh_downsampling.npz", U=bad)
    paths = {**_mesh_paths(), "mesh_downsampling": tmp_path / "mesh_downsampling.npz"}
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        load_mesh_arrays(*paths.values())
    assert "must not run" not in capsys.readouterr().out


def test_mesh_file_with_other_matrices_is_refused(tmp_path):
    with zipfile.ZipFile(REF / "mesh_downsampling.npz") as z:
        names = z.namelist()
    assert "U.npy" in names
    np.savez(tmp_path / "only_d.npz", D=np.zeros(3))
    paths = {**_mesh_paths(), "mesh_downsampling": tmp_path / "only_d.npz"}
    with pytest.raises(ValueError, match="no 'U' array"):
        load_mesh_arrays(*paths.values())


def test_probe_names_a_garbage_checkpoint(files, tmp_path):
    (tmp_path / "garbage.bin").write_bytes(b"not a checkpoint")
    message = probe_model("pointhmr", "pointhmr", {**_mesh_paths(), "checkpoint": tmp_path / "garbage.bin"})
    assert message and "does not load as a pointhmr model" in message
    assert probe_model("pointhmr", "pointhmr", {k: v for k, v in files.items() if k != "smpl"}) is None


def test_stage_without_weights_says_what_is_missing_and_keeps_the_default(caplog):
    from engine.body.anny_model import load_anny_body_data

    with caplog.at_level("WARNING"):
        stage = BodyStage(BodySettings(backend="pointhmr"), model_data=load_anny_body_data())
    assert stage.backend == "anny"
    messages = [r.getMessage() for r in caplog.records if "PointHMR" in r.getMessage() or "pointhmr" in r.getMessage()]
    assert any("PointHMR body back-end off" in m and "pointhmr" in m for m in messages), messages
