"""What mediapipe saw in one frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.stage_protocol import jsonable


@dataclass(frozen=True)
class PerceptionResult:
    """Landmarks in image pixels (x right, y down) of the frame they came from.

    image_size: (H, W) of the frame.
    face_landmarks: (478, 3) float32 or None; x, y pixels; z in pixels relative to the face
        centre (mediapipe z times image width; smaller = closer to the camera).
    face_box: (4,) float32 x1, y1, x2, y2 pixels, the bounding box of face_landmarks, or None.
    pose_landmarks: (33, 3) float32 or None; x, y pixels, z pixels relative to the hips.
    pose_visibility: (33,) float32 in [0, 1] or None.
    pose_world: (33, 3) float32 or None; metres, origin between the hips, x right, y down,
        z away from the camera (mediapipe's world landmarks).
    segmentation: (H, W) float32 in [0, 1], person probability, or None.
    people_boxes: (P, 4) float32 x1, y1, x2, y2 pixels of every person the segmentation
        search found (left to right; refreshed every few frames on video), or None when it
        did not run. The landmarks are of the chosen one (`--person`).
    people_pose: (P', 33, 3) float32 or None: on photos with several people, each one's pose
        landmarks found in their own crop (pixels; all zeros where none was found), in the
        order of people_boxes (at most the first 8).
    """

    image_size: tuple[int, int]
    face_landmarks: np.ndarray | None = None
    face_box: np.ndarray | None = None
    pose_landmarks: np.ndarray | None = None
    pose_visibility: np.ndarray | None = None
    pose_world: np.ndarray | None = None
    segmentation: np.ndarray | None = None
    people_boxes: np.ndarray | None = None
    people_pose: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        face = None if self.face_landmarks is None else self.face_landmarks[:, :2]
        pose = None if self.pose_landmarks is None else self.pose_landmarks[:, :2]
        return {
            "face_landmarks_2d": jsonable(face, 1),
            "face_box": jsonable(self.face_box, 1),
            "pose_landmarks_2d": jsonable(pose, 1),
            "pose_visibility": jsonable(self.pose_visibility, 2),
            "segmentation_area": None if self.segmentation is None
            else round(float((self.segmentation > 0.5).mean()), 4),
            "people_boxes": jsonable(self.people_boxes, 1),
            "people_pose_2d": None if self.people_pose is None else
            [jsonable(p[:, :2], 1) if p.any() else None for p in self.people_pose],
        }
