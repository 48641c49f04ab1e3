"""The compiled kinematics kernels against the plain numpy formulas they replace."""
import numpy as np
import scipy.sparse

from engine.body.anny_kinematics import forward_kinematics, kinematic_levels, rodrigues, skin_vertices


def _tree(n: int, rng) -> np.ndarray:
    parents = np.full(n, -1)
    for c in range(1, n):
        parents[c] = rng.integers(0, c)  # parents listed before children, as in Anny
    return parents


def test_forward_kinematics_matches_the_level_by_level_products():
    rng = np.random.default_rng(11)
    parents = _tree(40, rng)
    local = rodrigues(rng.normal(size=(40, 3)))
    offsets = rng.normal(size=(40, 3))
    root = rng.normal(size=3)
    rot, pos = forward_kinematics(parents, local, offsets, root)
    want_rot, want_pos = local.copy(), np.zeros((40, 3))
    want_pos[0] = root
    for level in kinematic_levels(parents):
        p = parents[level]
        want_rot[level] = want_rot[p] @ local[level]
        want_pos[level] = want_pos[p] + (want_rot[p] @ offsets[level][..., None])[..., 0]
    np.testing.assert_allclose(rot, want_rot, atol=1e-12)
    np.testing.assert_allclose(pos, want_pos, atol=1e-12)


def test_skin_vertices_matches_the_sparse_blend():
    rng = np.random.default_rng(12)
    v, j = 500, 30
    dense = np.where(rng.random((v, j)) < 0.1, rng.random((v, j)), 0.0)
    dense[np.arange(v), rng.integers(0, j, v)] += 0.5
    dense /= dense.sum(axis=1, keepdims=True)
    weights = scipy.sparse.csr_matrix(dense.astype(np.float32))
    transforms = rng.normal(size=(j, 3, 4)).astype(np.float32)
    rest = rng.normal(size=(v, 3)).astype(np.float32)
    blend = (dense @ transforms.reshape(j, 12)).reshape(v, 3, 4)
    want = (blend[..., :3] * rest[:, None, :]).sum(-1) + blend[..., 3]
    np.testing.assert_allclose(skin_vertices(rest, weights, transforms), want, atol=1e-4)
