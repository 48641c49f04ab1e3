"""Synthetic mediapipe-like observations from Anny with a known pose and shape.

Used by the body tests and `python main.py bench body` to measure the fit without
mediapipe: the landmarks are the model's own keypoints, projected, with noise and
occlusions; the world landmarks are its hip-centred 3D keypoints with noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.body import topology as topo
from engine.body.anny_kinematics import rodrigues
from engine.body.anny_model import AnnyBodyData
from engine.body.fit import AnnyFitter, FitOutput, Observation
from engine.pinhole import PinholeCamera

#: Standard deviation (radians) of the random rotation of each posed bone.
POSE_SPREAD = {"root": 0.3, "spine04": 0.1, "spine02": 0.1, "neck01": 0.1, "head": 0.2,
               "upperarm01.L": 0.6, "upperarm01.R": 0.6, "upperleg01.L": 0.4, "upperleg01.R": 0.4,
               "foot.L": 0.2, "foot.R": 0.2, "wrist.L": 0.3, "wrist.R": 0.3}

#: The body joints of mediapipe-33 used for MPJPE: shoulders, elbows, wrists, hips, knees, ankles.
BODY_JOINTS = np.array([11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])


def random_pose(rng: np.random.Generator, data: AnnyBodyData) -> np.ndarray:
    """(J, 3, 3) plausible random pose: free limbs, small spine/neck, knees/elbows bent 0-85°."""
    local = np.broadcast_to(np.eye(3), (data.num_bones, 3, 3)).copy()
    for bone, spread in POSE_SPREAD.items():
        local[data.bone_index(bone)] = rodrigues(rng.normal(0, spread, 3))
    for bone, axis in topo.HINGE_AXES.items():
        local[data.bone_index(bone)] = rodrigues(np.asarray(axis) * rng.uniform(0, 1.5))
    return local


@dataclass(frozen=True)
class Synthetic:
    truth: FitOutput
    obs: Observation


def synthesize(fitter: AnnyFitter, local: np.ndarray, root: np.ndarray, beta: np.ndarray,
               camera: PinholeCamera, rng: np.random.Generator, noise_px: float = 2.0,
               noise_world_m: float = 0.015, occluded: int = 4, time: float = 0.0) -> Synthetic:
    """Landmarks of the posed model as mediapipe would report them: pixels with Gaussian noise,
    hip-centred world points with noise, `occluded` random landmarks at visibility 0.1."""
    dummy = Observation(np.zeros((33, 2)), np.ones(33), None, camera)
    truth = fitter.evaluate(local, root, beta, dummy, np.ones(33, bool), with_mesh=False)
    pts = truth.keypoints_3d.astype(np.float64)
    visibility = np.full(33, 0.95)
    if occluded:
        visibility[rng.choice(33, occluded, replace=False)] = 0.1
    uv = truth.keypoints_2d + rng.normal(0, noise_px, (33, 2))
    world = pts - 0.5 * (pts[23] + pts[24]) + rng.normal(0, noise_world_m, (33, 3))
    return Synthetic(truth, Observation(uv, visibility, world, camera, time))


def root_relative_error_mm(a: np.ndarray, b: np.ndarray, index: np.ndarray) -> float:
    """Mean distance (mm) between point sets (N, 3) after putting both hip centres at 0."""
    def rel(p):
        return p - 0.5 * (p[23] + p[24])
    return float(np.linalg.norm(rel(a)[index] - rel(b)[index], axis=1).mean() * 1000)
