"""SMPL topology as data: joint names, and where each mediapipe pose landmark comes from.

Vertex ids refer to the SMPL mesh (6,890 vertices, shared by SMPL and the SMPL-H body).
They are the keypoint vertices published with the smplx package (smplx/vertex_ids.py,
table "smplh": nose 332, eyes 2800/6260, ears 583/4071, finger tips, heels, big toes),
the ones SMPL-based methods use for the COCO/OpenPose face and foot keypoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SMPL_NUM_VERTICES = 6890

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)

MEDIAPIPE_POSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_heel", "right_heel", "left_foot_index",
    "right_foot_index",
)


@dataclass(frozen=True)
class KeypointSource:
    """Where one mediapipe landmark is read on the posed SMPL body.

    kind: "joint" (index into the 24 SMPL joints) or "vertex" (SMPL mesh vertex id).
    exact: False when SMPL has no counterpart and a nearby point stands in (drawn, but
        marked not visible and never compared with the observation).
    """

    kind: Literal["joint", "vertex"]
    index: int
    exact: bool = True


def _j(index: int, exact: bool = True) -> KeypointSource:
    return KeypointSource("joint", index, exact)


def _v(index: int, exact: bool = True) -> KeypointSource:
    return KeypointSource("vertex", index, exact)


_NOSE, _LEYE, _REYE = 332, 2800, 6260

# One entry per mediapipe pose landmark, in mediapipe order. Both use the person's own
# left/right. Eye corners and mouth corners have no SMPL keypoint vertex: the eye vertex
# and the nose vertex stand in.
MEDIAPIPE_FROM_SMPL: tuple[KeypointSource, ...] = (
    _v(_NOSE),                                  # 0 nose
    _v(_LEYE, False), _v(_LEYE), _v(_LEYE, False),  # 1-3 left eye inner, eye, outer
    _v(_REYE, False), _v(_REYE), _v(_REYE, False),  # 4-6 right eye inner, eye, outer
    _v(583), _v(4071),                          # 7-8 left, right ear
    _v(_NOSE, False), _v(_NOSE, False),         # 9-10 mouth left, right
    _j(16), _j(17),                             # 11-12 shoulders
    _j(18), _j(19),                             # 13-14 elbows
    _j(20), _j(21),                             # 15-16 wrists
    _v(2673), _v(6133),                         # 17-18 pinky tips
    _v(2319), _v(5782),                         # 19-20 index tips
    _v(2746), _v(6191),                         # 21-22 thumb tips
    _j(1), _j(2),                               # 23-24 hips
    _j(4), _j(5),                               # 25-26 knees
    _j(7), _j(8),                               # 27-28 ankles
    _v(3387), _v(6787),                         # 29-30 heels
    _v(3216), _v(6617),                         # 31-32 big toes (foot index)
)

# Parent of each SMPL joint (the first row of the official kintree_table; root -1).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
