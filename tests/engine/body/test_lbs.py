"""lbs() against an independent float64 formulation: per-vertex loops, explicit recursion
over the kinematic tree, Rodrigues from axis-angle written out."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.body.lbs import lbs
from engine.body.smpl_io import SmplLayer, SmplModelData
from engine.body.rotations import axis_angle_to_rotmat
from tests.engine.body.smpl_random import random_smpl

TINY_PARENTS = (-1, 0, 1, 2, 1, 0, 5)  # a branching chain of 7 joints


def _rodrigues(aa: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(aa))
    if angle == 0:
        return np.eye(3)
    k = aa / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def _homogeneous(rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, t
    return m


def reference_lbs(model: SmplModelData, betas: np.ndarray, axis_angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One body: betas (S,), axis_angles (J, 3) -> vertices (V, 3), joints (J, 3), float64."""
    v_template = model.v_template.astype(np.float64)
    shapedirs, posedirs = model.shapedirs.astype(np.float64), model.posedirs.astype(np.float64)
    n_v, n_j = v_template.shape[0], len(model.parents)
    rots = [_rodrigues(a) for a in axis_angles]

    v_shaped = np.empty_like(v_template)
    for v in range(n_v):
        v_shaped[v] = v_template[v] + sum(shapedirs[v, :, s] * betas[s] for s in range(len(betas)))
    rest = np.zeros((n_j, 3))
    for j in range(n_j):
        for v in range(n_v):
            rest[j] += model.J_regressor[j, v] * v_shaped[v]

    feature = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, n_j)])
    v_posed = np.array([v_shaped[v] + posedirs[v] @ feature for v in range(n_v)])

    world = [None] * n_j
    for j in range(n_j):
        p = model.parents[j]
        offset = rest[j] if p < 0 else rest[j] - rest[p]
        local = _homogeneous(rots[j], offset)
        world[j] = local if p < 0 else world[p] @ local
    joints = np.array([w[:3, 3] for w in world])

    out = np.empty_like(v_posed)
    for v in range(n_v):
        blended = np.zeros((4, 4))
        for j in range(n_j):
            blended += model.weights[v, j] * (world[j] @ _homogeneous(np.eye(3), -rest[j]))
        out[v] = (blended @ np.append(v_posed[v], 1.0))[:3]
    return out, joints


def _torch_args(model: SmplModelData, dtype: torch.dtype):
    p = model.posedirs.shape[2]
    return (torch.as_tensor(model.v_template, dtype=dtype), torch.as_tensor(model.shapedirs, dtype=dtype),
            torch.as_tensor(model.posedirs.reshape(-1, p).T.copy(), dtype=dtype),
            torch.as_tensor(model.J_regressor, dtype=dtype), torch.as_tensor(model.parents),
            torch.as_tensor(model.weights, dtype=dtype))


@pytest.fixture(scope="module")
def case():
    model = random_smpl(40, TINY_PARENTS, num_betas=5, seed=7)
    rng = np.random.default_rng(11)
    betas = rng.normal(size=(3, 5))
    aa = rng.normal(scale=0.8, size=(3, len(TINY_PARENTS), 3))
    want = [reference_lbs(model, betas[b], aa[b]) for b in range(3)]
    return model, betas, aa, np.stack([w[0] for w in want]), np.stack([w[1] for w in want])


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_lbs_matches_reference(case, dtype, atol):
    model, betas, aa, want_v, want_j = case
    v_template, shapedirs, posedirs, regressor, parents, weights = _torch_args(model, dtype)
    rotmats = axis_angle_to_rotmat(torch.as_tensor(aa, dtype=dtype))
    verts, joints = lbs(torch.as_tensor(betas, dtype=dtype), rotmats, v_template, shapedirs, posedirs,
                        regressor, parents, weights)
    assert verts.shape == (3, 40, 3) and joints.shape == (3, len(TINY_PARENTS), 3)
    assert verts.dtype == dtype
    np.testing.assert_allclose(verts.numpy(), want_v, atol=atol)
    np.testing.assert_allclose(joints.numpy(), want_j, atol=atol)


def test_rest_pose_is_template_and_regressed_joints(case):
    model = case[0]
    layer = SmplLayer(model, num_betas=None, dtype=torch.float64)
    n_j = len(TINY_PARENTS)
    out = layer(torch.zeros(1, 5, dtype=torch.float64), torch.eye(3, dtype=torch.float64).expand(1, n_j, 3, 3))
    np.testing.assert_allclose(out.vertices[0].numpy(), model.v_template, atol=1e-12)
    want_joints = model.J_regressor.astype(np.float64) @ model.v_template
    np.testing.assert_allclose(out.joints[0].numpy(), want_joints, atol=1e-6)


def test_layer_equals_lbs_plus_translation(case):
    model, betas, aa, want_v, want_j = case
    layer = SmplLayer(model, num_betas=None, dtype=torch.float64)
    transl = torch.tensor([[0.1, -0.2, 2.0]] * 3, dtype=torch.float64)
    out = layer(torch.as_tensor(betas), axis_angle_to_rotmat(torch.as_tensor(aa)), transl)
    np.testing.assert_allclose(out.vertices.numpy(), want_v + transl.numpy()[:, None], atol=1e-12)
    np.testing.assert_allclose(out.joints.numpy(), want_j + transl.numpy()[:, None], atol=1e-12)


def test_fewer_betas_means_zero_for_the_rest(case):
    model, betas, aa, _, _ = case
    layer = SmplLayer(model, num_betas=None, dtype=torch.float64)
    rot = axis_angle_to_rotmat(torch.as_tensor(aa[:1]))
    short = layer(torch.as_tensor(betas[:1, :2]), rot)
    padded = layer(torch.as_tensor(np.concatenate([betas[:1, :2], np.zeros((1, 3))], axis=1)), rot)
    np.testing.assert_allclose(short.vertices.numpy(), padded.vertices.numpy(), atol=1e-14)
