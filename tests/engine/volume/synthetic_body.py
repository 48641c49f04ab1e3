"""A synthetic person for the volume tests: a closed capsule standing in front of a pinhole
camera, as a BodyResult, with its exact silhouette and a frame to colour it from."""
from __future__ import annotations

import cv2
import numpy as np
import trimesh

from engine.body.result import BodyResult

WIDTH, HEIGHT = 640, 480
FOCAL = 500.0
CENTRE = (320.0, 240.0)
RADIUS = 0.15       # metres
LENGTH = 1.2        # metres between the cap centres
DEPTH = 3.0         # camera z of the capsule's axis, metres


def capsule_body(offset_y: float = 0.0) -> BodyResult:
    """A vertical capsule (axis along camera y, centre (0, offset_y, DEPTH)) as a BodyResult."""
    mesh = trimesh.creation.capsule(height=LENGTH, radius=RADIUS, count=[24, 24])
    v = np.asarray(mesh.vertices, np.float64)
    v = v[:, [0, 2, 1]]  # trimesh's capsule runs along z; stand it along y
    faces = np.asarray(mesh.faces, np.int32)[:, ::-1]  # swapping two axes flips the winding
    v = v + np.array([0.0, offset_y, DEPTH])
    z = np.zeros((0, 3), np.float32)
    return BodyResult(vertices=v.astype(np.float32), faces=faces, joints_3d=z,
                      keypoints_2d=np.zeros((0, 2), np.float32),
                      keypoint_visible=np.zeros(0, bool), pose=z, shape=np.zeros(0, np.float32),
                      camera_focal_px=FOCAL, camera_center_px=np.array(CENTRE, np.float32),
                      translation=np.array([0.0, offset_y, DEPTH], np.float32), fit_rmse_px=0.0, backend="test")


def project(points: np.ndarray) -> np.ndarray:
    """(N, 3) camera space -> (N, 2) pixels under the test camera."""
    return points[:, :2] / points[:, 2:3] * FOCAL + np.array(CENTRE)


def silhouette(body: BodyResult) -> np.ndarray:
    """(H, W) float32 0/1: the body's exact projection (every triangle filled)."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    uv = project(body.vertices.astype(np.float64))
    tris = np.round(uv[body.faces] * 16).astype(np.int32)  # 4 fractional bits
    for tri in tris:  # one at a time: fillPoly would XOR overlapping triangles
        cv2.fillConvexPoly(mask, tri, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def two_tone_frame() -> np.ndarray:
    """(H, W, 3) uint8 BGR: left half one colour, right half another, plus fine noise so
    that a pixel's own colour is distinguishable from its neighbours'."""
    rng = np.random.default_rng(7)
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    img[:, : WIDTH // 2] = (40, 60, 200)
    img[:, WIDTH // 2:] = (200, 120, 30)
    noise = rng.integers(-20, 21, size=img.shape)
    return np.clip(img.astype(np.int32) + noise, 0, 255).astype(np.uint8)
