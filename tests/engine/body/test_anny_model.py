"""The compact Anny body model: cache round trip, and agreement with the `anny` package."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.body import anny_model
from engine.body.anny_body import AnnyBody, batch_rodrigues
from engine.body.anny_model import ANNY_TO_MODEL, load_anny_body_data, save_anny_body_data
from engine.body.fit import AnnyFitter, Observation
from engine.pinhole import PinholeCamera
from tests.engine.body.anny_synthetic import anny_data


@pytest.fixture(scope="module")
def data():
    return anny_data()


@pytest.fixture(scope="module")
def anny_reference():
    import anny

    torch.set_num_threads(1)
    return anny.Anny()  # fast once anny's own cache exists (the compact model build made it)


def test_model_has_expected_topology(data):
    import trimesh

    assert data.num_vertices == 13718 and len(data.faces) == 27420 and data.num_bones == 104
    assert data.faces.dtype == np.int32 and data.v_mean.dtype == np.float32
    mesh = trimesh.Trimesh(data.v_mean, data.faces, process=False)
    # Body, mouth interior and two eyeballs: four closed surfaces (what the volume stage needs).
    assert mesh.is_watertight
    height = data.v_mean[:, 1].max() - data.v_mean[:, 1].min()
    assert 1.5 < height < 1.9  # the mean adult, metres; y is down in the model frame
    def coco(name):
        row = data.coco_labels.index(name)
        return data.coco_weights[row] @ data.v_mean[data.coco_indices[row]]

    # Model frame: facing −z (nose before ears, toes before heels), the person's left at +x.
    assert coco("nose")[2] < coco("left_ear")[2] - 0.05
    assert coco("left_big_toe")[2] < coco("left_heel")[2] - 0.1
    assert coco("left_shoulder")[0] > 0.1 > -0.1 > coco("right_shoulder")[0]
    assert coco("nose")[1] < coco("left_hip")[1] - 0.6  # y down


def test_cache_round_trip_and_progress(tmp_path, data, monkeypatch):
    path = tmp_path / "anny_body.safetensors"
    messages = []
    monkeypatch.setattr(anny_model, "build_anny_body_data", lambda on_progress=None: data)
    built = load_anny_body_data(path, on_progress=messages.append)
    assert path.exists() and messages  # the build said what it was doing
    monkeypatch.setattr(anny_model, "build_anny_body_data",
                        lambda on_progress=None: pytest.fail("a valid cache must not be rebuilt"))
    loaded = load_anny_body_data(path)
    for name in anny_model._ARRAY_FIELDS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(built, name))
    assert loaded.bone_labels == data.bone_labels and loaded.coco_labels == data.coco_labels


def test_corrupt_cache_is_rebuilt(tmp_path, data, monkeypatch):
    path = tmp_path / "anny_body.safetensors"
    path.write_bytes(b"not a safetensors file")
    calls = []
    monkeypatch.setattr(anny_model, "build_anny_body_data", lambda on_progress=None: calls.append(1) or data)
    load_anny_body_data(path)
    assert calls == [1]
    save_anny_body_data(data, path)
    assert load_anny_body_data(path).num_vertices == data.num_vertices


def test_forward_matches_anny_local_ref(data, anny_reference):
    """AnnyBody(pose, β, t) equals anny's own forward ("local-ref" deltas, the blendshape
    coefficients of β) up to float32 model data, after the fixed change of axes."""
    from anny.models.rigged_model import RiggedModelWithLinearBlendShapes

    rng = np.random.default_rng(0)
    body = AnnyBody(data, torch.float64)
    pose = torch.as_tensor(rng.normal(0, 0.4, (2, data.num_bones, 3)))
    beta = torch.as_tensor(rng.normal(0, 1.0, (2, data.num_shape)))
    trans = torch.as_tensor(rng.normal(0, 1.0, (2, 3)))
    axes = torch.as_tensor(ANNY_TO_MODEL)
    with torch.inference_mode():
        ours = body(pose, beta, trans)
        deltas = torch.zeros(2, data.num_bones, 4, 4, dtype=torch.float64)
        deltas[..., 3, 3] = 1
        deltas[..., :3, :3] = axes.T @ batch_rodrigues(pose) @ axes
        deltas[:, 0, :3, 3] = trans @ axes
        coeffs = (torch.as_tensor(data.shape_coeff_mean).double()
                  + beta @ torch.as_tensor(data.shape_coeff_dirs).double())
        ref = RiggedModelWithLinearBlendShapes.forward(anny_reference, deltas, coeffs)
    np.testing.assert_allclose(ours.vertices.numpy(), (ref["vertices"] @ axes.T).numpy(), atol=2e-5)
    np.testing.assert_allclose(ours.joints.numpy(), (ref["bone_poses"][..., :3, 3] @ axes.T).numpy(), atol=2e-5)


def test_coco_keypoints_match_anny_regressor(data, anny_reference):
    import anny
    from anny.models.rigged_model import RiggedModelWithLinearBlendShapes

    from engine.body import topology as topo

    body = AnnyBody(data, torch.float64)
    regressor = anny.KeypointsRegressor.coco(anny_reference)
    with torch.inference_mode():
        ours = body(torch.zeros(1, data.num_bones, 3, dtype=torch.float64),
                    torch.zeros(1, data.num_shape, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
        coeffs = torch.as_tensor(data.shape_coeff_mean).double()[None]
        ref_out = RiggedModelWithLinearBlendShapes.forward(anny_reference, None, coeffs)
        ref = regressor(ref_out)[0] @ torch.as_tensor(ANNY_TO_MODEL).T
    root_shift = ref_out["bone_poses"][0, 0, :3, 3] @ torch.as_tensor(ANNY_TO_MODEL).T
    for k, (kind, name) in enumerate(topo.LANDMARK_SOURCES):
        if kind == "coco":
            expected = ref[regressor.labels.index(name)] - root_shift
            np.testing.assert_allclose(ours.keypoints[0, k].numpy(), expected.numpy(), atol=1e-4)


def test_numpy_fit_model_matches_torch_module(data):
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.4, (data.num_bones, 3))
    beta, trans = rng.normal(0, 1.0, data.num_shape), np.array([0.1, -0.2, 3.0])
    with torch.inference_mode():
        ours = AnnyBody(data, torch.float64)(torch.as_tensor(pose)[None], torch.as_tensor(beta)[None],
                                             torch.as_tensor(trans)[None])
    fitter = AnnyFitter(data)
    camera = PinholeCamera.from_fov(1280, 720, 60.0)
    out = fitter.evaluate(batch_rodrigues(torch.as_tensor(pose)).numpy(), trans, beta,
                          Observation(np.zeros((33, 2)), np.ones(33), None, camera), np.ones(33, bool))
    np.testing.assert_allclose(out.vertices, ours.vertices[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out.joints, ours.joints[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(out.keypoints_3d, ours.keypoints[0].numpy(), atol=1e-5)
