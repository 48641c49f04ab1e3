"""SMPL-format linear blend skinning (batched torch), as free functions.

The model (Loper et al. 2015): shape blend shapes move the template, a regressor places
the joints on the shaped mesh, pose-corrective blend shapes depend on the rotations
(R_j - I for every non-root joint), and each vertex follows a weighted sum of the joints'
rigid transforms. Letters: B batch, V vertices, J joints, S shape coefficients,
P = 9 (J - 1) pose-corrective coefficients.

Coordinates are the model's own (SMPL: metres, y up, facing +z); callers convert.
"""
from __future__ import annotations

import torch


def blend_shapes(betas: torch.Tensor, shapedirs: torch.Tensor) -> torch.Tensor:
    """Per-vertex offsets of the shape blend shapes.

    betas: (B, S); shapedirs: (V, 3, S). Returns (B, V, 3).
    """
    return torch.einsum("bs,vcs->bvc", betas, shapedirs)


def vertices2joints(J_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joint locations as fixed linear combinations of vertices.

    J_regressor: (J, V) dense; vertices: (B, V, 3). Returns (B, J, 3).
    """
    return torch.einsum("jv,bvc->bjc", J_regressor, vertices)


def rigid_transform_4x4(rotmats: torch.Tensor, translations: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations and (..., 3) translations -> (..., 4, 4) homogeneous transforms."""
    top = torch.cat((rotmats, translations[..., None]), dim=-1)  # (..., 3, 4)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1
    return torch.cat((top, bottom), dim=-2)


def batch_rigid_transform(rotmats: torch.Tensor, joints: torch.Tensor,
                          parents: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose the kinematic chain.

    rotmats: (B, J, 3, 3) local rotation of each joint relative to its parent.
    joints: (B, J, 3) rest-pose joint locations.
    parents: (J,) parent index of each joint, parents[0] = -1 (root); every parent must
        come before its child (true for SMPL), which `load_smpl` checks.
    Returns (posed_joints (B, J, 3), rel_transforms (B, J, 4, 4)): the joints after
    posing, and per joint the world transform with the rest joint location removed, i.e.
    the transform that moves a rest-pose point rigidly attached to that joint.
    """
    parent_list = parents.tolist() if isinstance(parents, torch.Tensor) else list(parents)
    # Offsets from each parent in the rest pose: the local translation of each joint.
    offsets = joints.clone()
    offsets[:, 1:] = joints[:, 1:] - joints[:, parent_list[1:]]
    local = rigid_transform_4x4(rotmats, offsets)  # (B, J, 4, 4)
    world = [local[:, 0]]
    for j in range(1, len(parent_list)):
        world.append(world[parent_list[j]] @ local[:, j])
    world_t = torch.stack(world, dim=1)  # (B, J, 4, 4)
    posed_joints = world_t[..., :3, 3]
    # Remove the rest location: A_j = G_j * [I, -J_j], so A_j applied to a rest point p gives
    # R_j (p - J_j) + t_j.
    rel = world_t.clone()
    rel[..., :3, 3] = world_t[..., :3, 3] - (world_t[..., :3, :3] @ joints[..., None])[..., 0]
    return posed_joints, rel


def lbs(betas: torch.Tensor, pose_rotmats: torch.Tensor, v_template: torch.Tensor,
        shapedirs: torch.Tensor, posedirs: torch.Tensor, J_regressor: torch.Tensor,
        parents: torch.Tensor | list[int], lbs_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape, pose and skin an SMPL-format model (argument order as smplx's `lbs`).

    betas: (B, S) shape coefficients.
    pose_rotmats: (B, J, 3, 3) local joint rotations; joint 0 is the global orientation.
    v_template: (V, 3) rest-pose template.
    shapedirs: (V, 3, S) shape blend shapes.
    posedirs: (P, V * 3) pose-corrective blend shapes, P = 9 (J - 1), in smplx's layout
        (the official (V, 3, P) array reshaped to (V * 3, P) and transposed).
    J_regressor: (J, V) dense joint regressor.
    parents: (J,) parent indices, parents[0] = -1.
    lbs_weights: (V, J) skinning weights.
    Returns (vertices (B, V, 3), joints (B, J, 3)) posed, in model coordinates, no global
    translation applied. Everything must share one dtype and device.
    """
    batch = betas.shape[0]
    v_shaped = v_template[None] + blend_shapes(betas, shapedirs)
    rest_joints = vertices2joints(J_regressor, v_shaped)

    eye = torch.eye(3, dtype=pose_rotmats.dtype, device=pose_rotmats.device)
    pose_feature = (pose_rotmats[:, 1:] - eye).reshape(batch, -1)  # (B, P)
    v_posed = v_shaped + (pose_feature @ posedirs).reshape(batch, -1, 3)

    joints, rel = batch_rigid_transform(pose_rotmats, rest_joints, parents)
    n_joints = rel.shape[1]
    # Blend the joint transforms per vertex: (B, V, J) @ (B, J, 16) -> (B, V, 4, 4).
    skin = (lbs_weights[None].expand(batch, -1, -1) @ rel.reshape(batch, n_joints, 16)).reshape(batch, -1, 4, 4)
    vertices = (skin[..., :3, :3] @ v_posed[..., None])[..., 0] + skin[..., :3, 3]
    return vertices, joints
