"""Skeleton topology for drawing: which landmarks are joined by lines.

MEDIAPIPE_POSE_EDGES joins mediapipe's 33 pose landmarks (BodyResult.keypoints_2d and
PerceptionResult.pose_landmarks share that order), the same pairs mediapipe's own
POSE_CONNECTIONS draws. Kept here so the renderer needs no mediapipe import.
"""
from __future__ import annotations

import numpy as np

MEDIAPIPE_POSE_EDGES: np.ndarray = np.array([
    # face
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    # arms and hands
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    # torso
    (11, 23), (12, 24), (23, 24),
    # legs and feet
    (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
], dtype=np.uint32)
MEDIAPIPE_POSE_EDGES.flags.writeable = False

NUM_POSE_LANDMARKS = 33
