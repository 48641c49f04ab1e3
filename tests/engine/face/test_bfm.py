"""The BFM loader and reconstruction, on a small synthetic file in the official layout.

The official bfm_noneck_v3.pkl is not in ../shared, so the test writes a pickle with the
same keys and layout (interleaved x, y, z rows; keypoints as flat triples) and checks the
layout facts against values computed by hand.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from engine.face.bfm import (BfmModel, crop_to_image, keypoints_to_vertices, load_bfm, model_vertices,
                             project_to_crop, reconstruct_image)
from engine.face.tddfa_params import decode_params

N_VERTS = 80
RNG_SEED = 3


def _official_layout(n: int = N_VERTS, ks: int = 45, ke: int = 12, tri_rows_first: bool = True) -> dict:
    rng = np.random.default_rng(RNG_SEED)
    kp_vertices = rng.permutation(n)[:68]
    tri = rng.integers(0, n, size=(3, 30)).astype(np.int32)
    return {
        "u": rng.normal(size=(3 * n, 1)).astype(np.float32),
        "w_shp": rng.normal(size=(3 * n, ks)).astype(np.float32),
        "w_exp": rng.normal(size=(3 * n, ke)).astype(np.float32),
        "keypoints": (kp_vertices[:, None] * 3 + np.arange(3)).reshape(-1).astype(np.int64),
        "tri": tri if tri_rows_first else tri.T.copy(),
        "_kp_vertices": kp_vertices,
    }


def _write(tmp_path, data: dict, name: str = "bfm_noneck_v3.pkl"):
    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump({k: v for k, v in data.items() if not k.startswith("_")}, f, protocol=2)
    return path


@pytest.fixture
def synthetic(tmp_path):
    data = _official_layout()
    return data, load_bfm(_write(tmp_path, data))


def test_layout_is_column_major_reshape(synthetic):
    data, bfm = synthetic
    assert isinstance(bfm, BfmModel)
    assert bfm.mean.shape == (N_VERTS, 3) and bfm.mean.dtype == np.float32
    # The official code: u.reshape(3, N, order="F") gives row 0 = all x, row 1 = all y ...
    np.testing.assert_array_equal(bfm.mean, data["u"].reshape(3, -1, order="F").T)
    # ... and vertex 1 is u[3:6], by hand.
    np.testing.assert_array_equal(bfm.mean[1], data["u"][3:6, 0])
    assert bfm.shape_basis.shape == (N_VERTS, 3, 40) and bfm.exp_basis.shape == (N_VERTS, 3, 10)
    np.testing.assert_array_equal(bfm.shape_basis[2, 1, 7], data["w_shp"][7, 7])  # row 3*2+1
    np.testing.assert_array_equal(bfm.exp_basis[5, 2, 9], data["w_exp"][17, 9])  # row 3*5+2


def test_keypoints_and_triangles(synthetic, tmp_path):
    data, bfm = synthetic
    assert bfm.keypoints68.dtype == np.int64
    np.testing.assert_array_equal(bfm.keypoints68, data["_kp_vertices"])
    assert bfm.triangles.shape == (30, 3) and bfm.triangles.dtype == np.int32
    np.testing.assert_array_equal(bfm.triangles, data["tri"].T)
    # Triangles stored (F, 3) load the same.
    other = load_bfm(_write(tmp_path, _official_layout(tri_rows_first=False), "b.pkl"))
    np.testing.assert_array_equal(other.triangles, bfm.triangles)


def test_bad_files_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="triples"):
        keypoints_to_vertices(np.arange(204)[::-1])
    data = _official_layout()
    del data["w_exp"]
    with pytest.raises(ValueError, match="w_exp"):
        load_bfm(_write(tmp_path, data))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"u": np.zeros(3), "f": print}))
    with pytest.raises(pickle.UnpicklingError):
        load_bfm(evil)


def test_official_triangles_load(shared_file, tmp_path):
    # tri.pkl from the official repository: (3, 76073) int32 over 38,365 vertices.
    data = _official_layout(n=38_365, ks=40, ke=10)
    bfm = load_bfm(_write(tmp_path, data), tri_path=shared_file("reference/3ddfa_v2/assets/tri.pkl"))
    assert bfm.triangles.shape == (76_073, 3) and bfm.triangles.max() == 38_364


def test_crop_to_image_by_hand():
    roi = np.array([10.0, 20.0, 250.0, 260.0])  # 240 px square: scale 2 from the 120 crop
    crop_pts = np.array([[1.0, 120.0, 1.0], [61.0, 60.0, 11.0], [121.0, 0.0, 6.0]])
    expected = np.array([[10.0, 20.0, 0.0], [130.0, 140.0, 20.0], [250.0, 260.0, 10.0]])
    np.testing.assert_allclose(crop_to_image(crop_pts, roi), expected, atol=1e-5)
    # A non-square ROI scales x and y apart, and z by their mean.
    out = crop_to_image(np.array([[31.0, 90.0, 3.0], [1.0, 120.0, 1.0]]), np.array([0.0, 0.0, 120.0, 360.0]))
    np.testing.assert_allclose(out, [[30.0, 90.0, 4.0], [0.0, 0.0, 0.0]], atol=1e-5)


def test_reconstruction_by_hand(synthetic):
    _, bfm = synthetic
    a_shp = np.zeros(40, np.float32)
    a_exp = np.zeros(10, np.float32)
    a_shp[3], a_exp[9] = 2.0, -1.0
    verts = model_vertices(bfm, a_shp, a_exp)
    np.testing.assert_allclose(verts, bfm.mean + 2 * bfm.shape_basis[:, :, 3] - bfm.exp_basis[:, :, 9], atol=1e-5)
    sparse = model_vertices(bfm, a_shp, a_exp, index=bfm.keypoints68)
    np.testing.assert_allclose(sparse, verts[bfm.keypoints68], atol=1e-6)

    # P = 0.5 * (rotation by 90 deg about z) | offset; params 62 in the official order.
    p = np.array([[0, -0.5, 0, 60], [0.5, 0, 0, 50], [0, 0, 0.5, 5]], np.float32)
    params = decode_params(np.concatenate([p.reshape(-1), a_shp, a_exp]))
    crop = project_to_crop(verts, params)
    np.testing.assert_allclose(crop[:, 0], -0.5 * verts[:, 1] + 60, atol=1e-5)
    np.testing.assert_allclose(crop[:, 1], 0.5 * verts[:, 0] + 50, atol=1e-5)
    img = reconstruct_image(bfm, params, np.array([0.0, 0.0, 120.0, 120.0]))
    np.testing.assert_allclose(img[:, 0], crop[:, 0] - 1, atol=1e-4)
    np.testing.assert_allclose(img[:, 1], 120 - crop[:, 1], atol=1e-4)
    np.testing.assert_allclose(img[:, 2], crop[:, 2] - crop[:, 2].min(), atol=1e-4)


def test_tri_pkl_beside_the_file_is_preferred(tmp_path):
    # Upstream rebuilt the triangles for bfm_noneck_v3 and reads configs/tri.pkl instead.
    data = _official_layout()
    path = _write(tmp_path, data)
    tri = np.array([[0, 1], [2, 3], [4, 5]], np.int32)  # (3, F), F = 2
    with open(tmp_path / "tri.pkl", "wb") as f:
        pickle.dump(tri, f)
    np.testing.assert_array_equal(load_bfm(path).triangles, [[0, 2, 4], [1, 3, 5]])
