"""Anny as a small smplx-style torch module: fixed model data as buffers, `forward(pose,
shape, translation) -> AnnyOutput`. Same math as engine/body/anny_kinematics.py (numpy,
used by the per-frame fit); this one is batched and differentiable.

Frames and units: model/camera frame (x = the person's left when facing the camera, y down,
z away from the camera), metres. pose[b, j] is bone j's rotation relative to Anny's
reference pose, in that pose's world-aligned axes (Anny's "local-ref"); pose[:, 0] is the
global rotation about the root joint, and `translation` is where the root joint goes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.body import topology as topo
from engine.body.anny_kinematics import kinematic_levels
from engine.body.anny_model import AnnyBodyData


@dataclass(frozen=True)
class AnnyOutput:
    """vertices: (B, V, 3); joints: (B, J, 3) posed bone heads; keypoints: (B, K, 3) the
    mediapipe-order landmarks (K = 33). All camera/model frame, metres, the input dtype."""

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor


def batch_rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3)."""
    theta = torch.linalg.norm(rotvec, dim=-1, keepdim=True).clamp_min(1e-12)
    axis = rotvec / theta
    zero = torch.zeros_like(axis[..., 0])
    k = torch.stack([zero, -axis[..., 2], axis[..., 1], axis[..., 2], zero, -axis[..., 0],
                     -axis[..., 1], axis[..., 0], zero], -1).reshape(axis.shape[:-1] + (3, 3))
    s, c = torch.sin(theta)[..., None], torch.cos(theta)[..., None]
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + s * k + (1 - c) * (k @ k)


def nearest_rotation(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> closest rotation (SVD with the determinant fixed to +1)."""
    u, _, vt = torch.linalg.svd(m)
    d = torch.sign(torch.linalg.det(u @ vt))
    u = torch.cat([u[..., :2], u[..., 2:] * d[..., None, None]], -1)
    return u @ vt


class AnnyBody(torch.nn.Module):
    """The compact Anny body (see engine/body/anny_model.py for the data)."""

    def __init__(self, data: AnnyBodyData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()

        def buf(name, array, as_dtype=dtype):
            self.register_buffer(name, torch.as_tensor(array).to(as_dtype), persistent=False)

        for name in ("v_mean", "v_basis", "h_mean", "h_basis", "m_mean", "m_basis", "ref_orient",
                     "skin_weights"):
            buf(name, getattr(data, name))
        buf("skin_indices", data.skin_indices, torch.long)
        buf("faces", data.faces, torch.long)
        self.parents = [int(p) for p in data.bone_parents]
        self.levels = [torch.as_tensor(level) for level in kinematic_levels(data.bone_parents)]
        self.bone_labels = data.bone_labels
        idx, w = _landmark_regressor(data)
        buf("kp_indices", idx, torch.long)
        buf("kp_weights", w)

    @property
    def num_shape(self) -> int:
        return int(self.v_basis.shape[0])

    def rest(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """shape (B, S) -> rest vertices (B, V, 3), heads (B, J, 3), align A = U Rᵀ (B, J, 3, 3)."""
        verts = self.v_mean + torch.einsum("bs,svk->bvk", shape, self.v_basis)
        heads = self.h_mean + torch.einsum("bs,sjk->bjk", shape, self.h_basis)
        m = self.m_mean + torch.einsum("bs,sjxy->bjxy", shape, self.m_basis)
        rest_rot = nearest_rotation(m[:, 1:])
        align = self.ref_orient[1:] @ rest_rot.transpose(-1, -2)
        eye = torch.eye(3, dtype=m.dtype, device=m.device).expand(len(m), 1, 3, 3)
        return verts, heads, torch.cat([eye, align], 1)

    def forward(self, pose: torch.Tensor, shape: torch.Tensor, translation: torch.Tensor) -> AnnyOutput:
        """pose: (B, J, 3) axis-angle or (B, J, 3, 3) rotations; shape: (B, S); translation: (B, 3)."""
        rot_local = batch_rodrigues(pose) if pose.shape[-1] == 3 and pose.dim() == 3 else pose
        verts, heads, align = self.rest(shape)
        par = torch.as_tensor([0] + self.parents[1:], device=heads.device)
        offsets = (align[:, par] @ (heads - heads[:, par])[..., None])[..., 0]
        # One batched product per depth level (parents are always in earlier levels).
        rot_w = torch.empty_like(rot_local)
        joints = torch.empty_like(heads)
        rot_w[:, 0], joints[:, 0] = rot_local[:, 0], translation
        for level in self.levels:
            p = par[level]
            parent_rot = rot_w[:, p]
            rot_w[:, level] = parent_rot @ rot_local[:, level]
            joints[:, level] = joints[:, p] + (parent_rot @ offsets[:, level, :, None])[..., 0]
        lin = rot_w @ align
        shift = joints - (lin @ heads[..., None])[..., 0]
        transforms = torch.cat([lin, shift[..., None]], -1)  # (B, J, 3, 4)
        blend = (self.skin_weights[None, :, :, None, None] * transforms[:, self.skin_indices]).sum(2)
        posed = (blend[..., :3] @ verts[..., None])[..., 0] + blend[..., 3]
        points = torch.cat([posed, joints], 1)
        keypoints = (self.kp_weights[..., None] * points[:, self.kp_indices]).sum(2)
        return AnnyOutput(posed, joints, keypoints)


def _landmark_regressor(data: AnnyBodyData):
    """(K, N) indices into concat(vertices, joints) and weights for topology.LANDMARK_SOURCES."""
    import numpy as np

    width = data.coco_indices.shape[1]
    idx = np.zeros((len(topo.LANDMARK_SOURCES), width), np.int64)
    w = np.zeros((len(topo.LANDMARK_SOURCES), width), np.float32)
    for k, (kind, ref) in enumerate(topo.LANDMARK_SOURCES):
        if kind == "coco":
            row = data.coco_labels.index(str(ref))
            idx[k], w[k] = data.coco_indices[row], data.coco_weights[row]
        elif kind == "vertex":
            idx[k, 0], w[k, 0] = int(ref), 1.0
        else:
            parts = ((ref, 1.0),) if kind == "bone" else ref
            for i, (label, weight) in enumerate(parts):
                idx[k, i], w[k, i] = data.num_vertices + data.bone_index(str(label)), weight
    return idx, w
