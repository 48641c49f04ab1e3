"""Anny kinematics as numpy free functions (float64, one body): what the per-frame fit uses.

The math is Anny's "local-ref" pose parameterisation rewritten SMPL-style (we checked the
equivalence against `anny` itself, see tests/engine/body/test_anny_model.py):

- Shape β (S,) gives rest vertices v, rest bone heads h (linear in β) and rest bone
  orientations R (the rotation nearest to a matrix linear in β; the root's is I).
- The *reference pose* has every bone at Anny's reference orientation U. Its joint
  positions are q_0 = h_0, q_c = q_p + A_p (h_c − h_p) with A_c = U_c R_cᵀ (A_0 = I).
- A pose is one local rotation Δ_c per bone, expressed in the (world-aligned) axes of the
  reference pose. World transforms chain as G_c = G_p · [Δ_c | q_c − q_p], with
  G_0 = [Δ_0 | t] (t = the root joint's position). Writing G_c = [Rg_c | j_c], a rest
  vertex is skinned by Σ_b w_b (Rg_b A_b (v − h_b) + j_b).

Frames: the model frame (x = the person's left, y down, z backwards, metres); with identity
global rotation the body stands upright facing −z, i.e. facing a camera at the origin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from engine.body.anny_model import AnnyBodyData


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices, skew(a) @ b = a × b."""
    out = np.zeros(v.shape[:-1] + (3, 3), dtype=v.dtype)
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices."""
    theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.maximum(theta, 1e-12)
    k = skew(axis)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1 - c) * (k @ k)


def rotation_log(rot: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, angles in [0, π]."""
    cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    theta = np.arccos(cos)
    vec = np.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0],
                    rot[..., 1, 0] - rot[..., 0, 1]], -1)
    sin = np.sin(theta)
    small = sin < 1e-6
    out = vec * (theta / np.where(small, 1.0, 2 * sin))[..., None]
    out = np.where(small[..., None] & (theta[..., None] < 1.0), vec / 2, out)
    near_pi = small & (theta >= 1.0)
    if np.any(near_pi):
        # θ ≈ π: axis from the diagonal of (R + I) / 2 = a aᵀ.
        diag = np.clip((np.diagonal(rot, axis1=-2, axis2=-1) + 1) / 2, 0, None)
        axis = np.sqrt(diag)
        sign = np.sign(np.stack([np.ones_like(theta), rot[..., 0, 1] + rot[..., 1, 0],
                                 rot[..., 0, 2] + rot[..., 2, 0]], -1))
        axis = axis * np.where(sign == 0, 1, sign)
        out = np.where(near_pi[..., None], axis * theta[..., None], out)
    return out


def nearest_rotation(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> the rotation closest in Frobenius norm (SVD, determinant fixed to +1)."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, 2] *= d[..., None]
    return u @ vt


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3,) unit vectors -> the (3, 3) rotation of smallest angle taking a to b."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        return rodrigues(np.pi * perp / np.linalg.norm(perp))
    return rodrigues(axis / s * np.arctan2(s, c))


def kinematic_levels(parents: np.ndarray) -> list[np.ndarray]:
    """Bones grouped by depth (root first): each level's parents are in earlier levels."""
    depth = np.zeros(len(parents), int)
    for c in range(1, len(parents)):
        depth[c] = depth[parents[c]] + 1  # Anny lists parents before children
    return [np.flatnonzero(depth == d) for d in range(1, depth.max() + 1)]


def subtree_matrix(parents: np.ndarray) -> np.ndarray:
    """(J, J) float: [a, b] = 1 when bone b is a or a descendant of a."""
    n = len(parents)
    sub = np.eye(n)
    for c in range(n - 1, 0, -1):  # children after parents: accumulate bottom-up
        sub[parents[c]] += sub[c]
    return (sub > 0).astype(np.float64)


@dataclass(frozen=True)
class RestState:
    """Shape-dependent quantities for one β (float64, model frame).

    beta: (S,). heads: (J, 3) rest bone heads h. heads_basis: (S, J, 3).
    align: (J, 3, 3) A = U Rᵀ (rest -> reference orientation; A_0 = I).
    offsets: (J, 3) q_c − q_parent between reference-pose joints q (0 for the root).
    offsets_basis: (J, 3, S) d offsets / d β with `align` held fixed.
    """

    beta: np.ndarray
    heads: np.ndarray
    heads_basis: np.ndarray
    align: np.ndarray
    offsets: np.ndarray
    offsets_basis: np.ndarray

    @property
    def heads_basis_t(self) -> np.ndarray:
        """(J, 3, S) view of heads_basis."""
        return np.transpose(self.heads_basis, (1, 2, 0))


def reference_joints(parents: np.ndarray, state: RestState) -> np.ndarray:
    """(J, 3) joint positions of the reference pose (root at its rest head)."""
    ref = np.zeros_like(state.heads)
    ref[0] = state.heads[0]
    for c in range(1, len(parents)):
        ref[c] = ref[parents[c]] + state.offsets[c]
    return ref


def rest_state(data: AnnyBodyData, beta: np.ndarray) -> RestState:
    beta = np.asarray(beta, np.float64)
    h_basis = data.h_basis.astype(np.float64)
    heads = data.h_mean + np.einsum("s,sjk->jk", beta, h_basis)
    m = data.m_mean + np.einsum("s,sjab->jab", beta, data.m_basis.astype(np.float64))
    rest_rot = nearest_rotation(m)
    rest_rot[0] = np.eye(3)
    align = data.ref_orient.astype(np.float64) @ np.swapaxes(rest_rot, -1, -2)
    align[0] = np.eye(3)
    parents = data.bone_parents
    par = np.where(parents < 0, 0, parents)
    offsets = (align[par] @ (heads - heads[par])[..., None])[..., 0]
    offsets[0] = 0.0
    offsets_basis = align[par] @ np.transpose(h_basis - h_basis[:, par], (1, 2, 0))
    offsets_basis[0] = 0.0
    return RestState(beta, heads, h_basis, align, offsets, offsets_basis)


def forward_kinematics(parents: np.ndarray, local_rot: np.ndarray, offsets: np.ndarray,
                       root_position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """local_rot (J, 3, 3), offsets (J, 3), root_position (3,) -> world rotations Rg (J, 3, 3)
    and joint positions j (J, 3) (the posed bone heads), model/camera frame, metres.
    Compiled: the fit calls this ~7 times a frame, and ~160 bones of 3×3 products in numpy
    cost ~0.2 ms a call in dispatch alone."""
    rot = np.empty((len(parents), 3, 3))
    pos = np.empty((len(parents), 3))
    _chain_kernel(np.asarray(parents, np.int64), np.ascontiguousarray(local_rot, np.float64),
                  np.ascontiguousarray(offsets, np.float64), np.asarray(root_position, np.float64), rot, pos)
    return rot, pos


@numba.njit(cache=True, nogil=True)
def _chain_kernel(parents, local_rot, offsets, root_position, rot, pos):  # pragma: no cover - compiled
    rot[0] = local_rot[0]
    pos[0] = root_position
    for c in range(1, len(parents)):  # Anny lists parents before children
        p = parents[c]
        for i in range(3):
            for j in range(3):
                rot[c, i, j] = (rot[p, i, 0] * local_rot[c, 0, j] + rot[p, i, 1] * local_rot[c, 1, j]
                                + rot[p, i, 2] * local_rot[c, 2, j])
            pos[c, i] = pos[p, i] + rot[p, i, 0] * offsets[c, 0] + rot[p, i, 1] * offsets[c, 1] + rot[p, i, 2] * offsets[c, 2]


def warm_up_kernels() -> None:
    """Load the compiled kernels now (~0.2 s each from numba's cache, more when compiling):
    called while the model loads, so that the first frame's fit does not pay for it."""
    import scipy.sparse

    forward_kinematics(np.array([-1, 0]), np.broadcast_to(np.eye(3), (2, 3, 3)), np.zeros((2, 3)), np.zeros(3))
    skin_vertices(np.zeros((1, 3), np.float32), scipy.sparse.csr_matrix(np.ones((1, 2), np.float32)),
                  np.zeros((2, 3, 4), np.float32))


def skinning_transforms(rot: np.ndarray, pos: np.ndarray, state: RestState) -> np.ndarray:
    """(J, 3, 4) per-bone transforms taking rest vertices to posed ones."""
    lin = rot @ state.align
    return np.concatenate([lin, (pos - (lin @ state.heads[..., None])[..., 0])[..., None]], -1)


def skinning_matrix(data: AnnyBodyData):
    """(V, J) scipy.sparse CSR float32 matrix of the LBS weights (built once per model)."""
    import scipy.sparse

    rows = np.repeat(np.arange(data.num_vertices), data.skin_indices.shape[1])
    weights = scipy.sparse.csr_matrix(
        (data.skin_weights.ravel(), (rows, data.skin_indices.ravel())),
        shape=(data.num_vertices, data.num_bones), dtype=np.float32)
    weights.eliminate_zeros()
    return weights


def skin_vertices(rest_vertices: np.ndarray, weights, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning. rest_vertices (V, 3) float32, weights (V, J) sparse CSR (see
    skinning_matrix), transforms (J, 3, 4) -> (V, 3) float32. One compiled pass over the
    non-zero weights (~3.5 per vertex): a sparse product then a (V, 3, 4) blend in numpy
    cost ~1.5 ms a frame in temporaries."""
    out = np.empty((len(rest_vertices), 3), np.float32)
    _skin_kernel(weights.indptr, weights.indices, weights.data,
                 np.ascontiguousarray(transforms, np.float32), np.ascontiguousarray(rest_vertices, np.float32), out)
    return out


@numba.njit(cache=True, nogil=True)
def _skin_kernel(indptr, indices, data, transforms, rest, out):  # pragma: no cover - compiled
    for v in range(rest.shape[0]):
        x, y, z = rest[v, 0], rest[v, 1], rest[v, 2]
        for i in range(3):
            acc = 0.0
            for k in range(indptr[v], indptr[v + 1]):
                t = transforms[indices[k]]
                acc += data[k] * (t[i, 0] * x + t[i, 1] * y + t[i, 2] * z + t[i, 3])
            out[v, i] = acc


def rest_vertices(data: AnnyBodyData, beta: np.ndarray) -> np.ndarray:
    """(V, 3) float32 rest vertices for shape β."""
    out = data.v_mean.copy()
    for b, basis in zip(np.asarray(beta, np.float32), data.v_basis):
        out += b * basis  # S axpys: no BLAS call, so no thread start-up on small products
    return out


@dataclass(frozen=True)
class KeypointRig:
    """Skinned keypoints as a few (keypoint, bone) pairs, exact under linear blend skinning.

    A keypoint regressed from vertices with weights a_v, each skinned with bone weights
    w_vb, is p_k = Σ_b Rg_b o_kb + ω_kb j_b with ω_kb = Σ_v a_v w_vb and
    o_kb = A_b (m_kb − ω_kb h_b), m_kb = Σ_v a_v w_vb v_v (linear in β). A bone-head
    keypoint is the pair (k, b) with ω = 1, m = h_b. P pairs in all, K keypoints.

    key: (P,) keypoint of each pair. bone: (P,) bone. omega: (P,). m_mean: (P, 3).
    m_basis: (P, 3, S). gather: (K, P) 0/1 sums pairs into keypoints.
    """

    key: np.ndarray
    bone: np.ndarray
    omega: np.ndarray
    m_mean: np.ndarray
    m_basis: np.ndarray
    gather: np.ndarray

    def local_offsets(self, state: RestState) -> tuple[np.ndarray, np.ndarray]:
        """o (P, 3) and d o / d β (P, 3, S) for this shape (A held fixed)."""
        a = state.align[self.bone]
        h = state.heads[self.bone]
        m = self.m_mean + self.m_basis @ state.beta
        o = (a @ (m - self.omega[:, None] * h)[..., None])[..., 0]
        ob = a @ (self.m_basis - self.omega[:, None, None] * state.heads_basis_t[self.bone])
        return o, ob

    def pair_points(self, rot: np.ndarray, pos: np.ndarray, o: np.ndarray) -> np.ndarray:
        """(P, 3) each pair's contribution Rg_b o_kb + ω_kb j_b."""
        return (rot[self.bone] @ o[..., None])[..., 0] + self.omega[:, None] * pos[self.bone]

    def points(self, rot: np.ndarray, pos: np.ndarray, o: np.ndarray) -> np.ndarray:
        """(K, 3) posed keypoints."""
        return self.gather @ self.pair_points(rot, pos, o)


def build_keypoint_rig(data: AnnyBodyData, sources: tuple[tuple[str, object], ...]) -> KeypointRig:
    """Rig for keypoints given as ("coco", name) | ("vertex", index) | ("bone", label) |
    ("bones", ((label, weight), ...)) (a weighted mean of bone heads)."""
    keys, bones, omegas, means, bases = [], [], [], [], []
    for k, (kind, ref) in enumerate(sources):
        if kind in ("bone", "bones"):
            parts = ((ref, 1.0),) if kind == "bone" else ref
            for label, weight in parts:
                b = data.bone_index(str(label))
                keys.append(k), bones.append(b), omegas.append(float(weight))
                means.append(weight * data.h_mean[b]), bases.append(weight * data.h_basis[:, b].T)
            continue
        if kind == "coco":
            row = data.coco_labels.index(str(ref))
            idx, a = data.coco_indices[row], data.coco_weights[row].astype(np.float64)
            idx, a = idx[a != 0], a[a != 0]
        elif kind == "vertex":
            idx, a = np.array([int(ref)]), np.array([1.0])
        else:
            raise ValueError(f"unknown keypoint source kind {kind!r}")
        w = np.zeros((len(idx), data.num_bones))
        np.add.at(w, (np.arange(len(idx))[:, None], data.skin_indices[idx]), data.skin_weights[idx])
        omega = a @ w  # (J,)
        m_mean = np.einsum("v,vb,vc->bc", a, w, data.v_mean[idx].astype(np.float64))
        m_basis = np.einsum("v,vb,svc->bcs", a, w, data.v_basis[:, idx].astype(np.float64))
        for b in np.flatnonzero(omega > 1e-6):
            keys.append(k), bones.append(b), omegas.append(omega[b])
            means.append(m_mean[b]), bases.append(m_basis[b])
    key = np.asarray(keys)
    gather = np.zeros((len(sources), len(keys)))
    gather[key, np.arange(len(keys))] = 1.0
    return KeypointRig(key, np.asarray(bones), np.asarray(omegas, np.float64),
                       np.asarray(means, np.float64), np.asarray(bases, np.float64), gather)
