"""Images of a person with a known pose and shape: held-out cases for detection and accuracy.

`engine.body.synthetic` makes landmarks without an image (the fit alone); this renders the
posed Anny body itself, clothed by colour (skin on head, forearms and hands; a shirt, trousers
and shoes), Lambert-shaded through a pinhole camera onto a noisy gradient, so that mediapipe
and the whole photo path can be run on it. The truth is the model's own keypoints in
mediapipe order, projected: for the COCO-17 subset these are Anny's COCO keypoint
regressor, the COCO definition.

Seeds make the cases: tests and `bench body` draw from different seeds, and neither is used
to tune anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.body.anny_kinematics import rodrigues, rotation_log
from engine.body.anny_model import AnnyBodyData
from engine.body.fit import AnnyFitter, Observation
from engine.body.synthetic import random_pose
from engine.pinhole import PinholeCamera
from engine.render.raster_cpu import shade_lambert

#: mediapipe-33 indices of the COCO-17 keypoints, in COCO order (nose, eyes, ears,
#: shoulders, elbows, wrists, hips, knees, ankles; left before right).
COCO17_FROM_MEDIAPIPE = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])

SKIN_TONES = ((90, 130, 190), (60, 90, 140), (120, 160, 220), (40, 60, 100), (150, 180, 230))  # BGR
_STANDING_HEIGHT_M = 1.7  # for the first guess of the camera distance only


@dataclass(frozen=True)
class PersonRender:
    """image: (H, W, 3) uint8 BGR. keypoints_2d: (33, 2) float32 true pixels, mediapipe
    order. height_px: the body's vertical extent in the image. camera: the pinhole used."""

    image: np.ndarray
    keypoints_2d: np.ndarray
    height_px: float
    camera: PinholeCamera


def clothing_parts(data: AnnyBodyData) -> np.ndarray:
    """(V,) str: "skin", "shirt", "trousers" or "shoe" by each vertex's main bone."""
    main = data.skin_indices[np.arange(data.num_vertices), np.argmax(data.skin_weights, axis=1)]

    def part(label: str) -> str:
        if label.startswith(("head", "neck", "eye", "lowerarm", "wrist", "finger", "metacarpal")):
            return "skin"
        if label.startswith(("spine", "clavicle", "shoulder", "upperarm")):
            return "shirt"
        if label.startswith(("foot", "toe")):
            return "shoe"
        return "trousers"

    labels = np.array([part(label) for label in data.bone_labels])
    return labels[main]


def render_person(fitter: AnnyFitter, rng: np.random.Generator, width: int, height: int,
                  height_px: float, parts: np.ndarray | None = None, pose_scale: float = 0.5,
                  yaw_max: float = 0.6) -> PersonRender:
    """One person `height_px` tall (±10 %: the pose changes the extent) somewhere across a
    width×height image, whole body in view. Pose: `engine.body.synthetic.random_pose` with
    every rotation scaled by `pose_scale` (everyday poses, not contortions), turned up to
    `yaw_max` radians either way; shape β ~ N(0, 0.6)."""
    data = fitter.data
    parts = clothing_parts(data) if parts is None else parts
    camera = PinholeCamera.from_fov(width, height, 60.0)
    local = rodrigues(rotation_log(random_pose(rng, data)) * pose_scale)
    local[0] = rodrigues(np.array([0.0, rng.uniform(-yaw_max, yaw_max), 0.0])) @ local[0]
    beta = rng.normal(0.0, 0.6, data.num_shape)
    dummy = Observation(np.zeros((33, 2)), np.ones(33), None, camera)
    everything = np.ones(33, bool)

    def extent(root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pix = camera.project(fitter.evaluate(local, root, beta, dummy, everything, with_mesh=True).vertices)
        return pix.min(axis=0), pix.max(axis=0)

    z = camera.focal_px * _STANDING_HEIGHT_M / height_px
    lo, hi = extent(np.array([0.0, 0.0, z]))
    z *= (hi[1] - lo[1]) / height_px  # image size goes as 1 / distance
    lo, hi = extent(np.array([0.0, 0.0, z]))
    # A sideways move at the body's distance shifts the whole image by Δ·f/z.
    half = 0.5 * (hi[0] - lo[0])
    want = np.array([rng.uniform(min(half + 10.0, width / 2), max(width - half - 10.0, width / 2)), height / 2.0])
    root = np.array([0.0, 0.0, z])
    for _ in range(2):  # perspective: the second pass corrects the first's few pixels
        root[:2] += (want - 0.5 * (lo + hi)) * z / camera.focal_px
        lo, hi = extent(root)
    out = fitter.evaluate(local, root, beta, dummy, everything, with_mesh=True)
    vertices = out.vertices.astype(np.float32)
    pix = camera.project(vertices)

    palette = {"skin": np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], np.float32),
               "shirt": rng.integers(30, 230, 3).astype(np.float32),
               "trousers": rng.integers(20, 160, 3).astype(np.float32),
               "shoe": np.array([30.0, 30.0, 30.0], np.float32)}
    colours = np.stack([palette[p] for p in parts]) / 255.0
    image_vertices = np.concatenate([pix, vertices[:, 2:3]], axis=1).astype(np.float32)
    person, raster = shade_lambert(vertices, image_vertices, data.faces, colours.astype(np.float32), height, width)
    image = np.where((raster.triangle_id >= 0)[..., None], person, _background(rng, width, height))
    return PersonRender(image, out.keypoints_2d.astype(np.float32), float(np.ptp(pix[:, 1])), camera)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A vertical two-colour gradient with pixel noise (a flat colour is too easy a scene)."""
    top, bottom = rng.integers(60, 200, 3), rng.integers(60, 200, 3)
    t = (np.arange(height, dtype=np.float32) / height)[:, None, None]
    noise = rng.normal(0.0, 6.0, (height, width, 1)).astype(np.float32)
    return np.clip(top * (1 - t) + bottom * t + noise, 0, 255).astype(np.uint8)


def keypoint_error_percent(points_2d: np.ndarray, truth_2d: np.ndarray) -> np.ndarray:
    """(17,) distance of each COCO-17 keypoint (inputs in mediapipe-33 order) from the truth,
    in percent of the truth's COCO-17 height."""
    truth = truth_2d[COCO17_FROM_MEDIAPIPE]
    return np.linalg.norm(points_2d[COCO17_FROM_MEDIAPIPE] - truth, axis=1) / np.ptp(truth[:, 1]) * 100.0
