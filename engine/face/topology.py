"""Landmark tables of the face models, as data.

mediapipe FaceMesh (refine_landmarks=True) gives 478 points: 0..467 the face mesh,
468..472 the right iris (centre first), 473..477 the left iris. "Right"/"left" are the
subject's. The iBUG-68 (dlib / 300-W) order runs from the subject's right (image left
for a frontal face) around the jaw, then brows, nose, eyes, outer and inner lips.
"""
from __future__ import annotations

import numpy as np

NUM_MEDIAPIPE = 478
NUM_MEDIAPIPE_MESH = 468  # without the 10 iris points
RIGHT_IRIS = np.arange(468, 473, dtype=np.int32)
LEFT_IRIS = np.arange(473, 478, dtype=np.int32)
IRIS_CENTRES = np.array([468, 473], dtype=np.int32)  # right, left: the pupils

# mediapipe index nearest to each iBUG-68 point (chosen on the canonical face mesh; the
# jaw-contour points are on mediapipe's face oval, which is near, not on, dlib's jaw line).
MEDIAPIPE_TO_IBUG68 = np.array([
    # jaw 0..16
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17..21 (outer -> inner), left brow 22..26 (inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27..30 (top -> tip), nose base 31..35 (right -> left)
    6, 197, 195, 4, 98, 97, 2, 326, 327,
    # right eye 36..41 (outer corner, upper lid, inner corner, lower lid)
    33, 160, 158, 133, 153, 144,
    # left eye 42..47 (inner corner, upper lid, outer corner, lower lid)
    362, 385, 387, 263, 373, 380,
    # outer lips 48..59 (right corner, upper lip to left corner, lower lip back)
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60..67
    78, 81, 13, 311, 308, 402, 14, 178,
], dtype=np.int32)

IBUG68_JAW = np.arange(0, 17, dtype=np.int32)
IBUG68_RIGID = np.array([27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45], dtype=np.int32)
"""iBUG points that hardly move with expression (nose, eye corners)."""

# Mirror pairs of mediapipe points used by tests that check left/right consistency.
MEDIAPIPE_MIRROR_PAIRS = np.array([
    [33, 263], [133, 362], [61, 291], [127, 356], [234, 454], [70, 300], [107, 336], [98, 327],
], dtype=np.int32)

# mediapipe's face oval (FACEMESH_FACE_OVAL), walked clockwise from the forehead top;
# these points lie on the silhouette and slide over the skin as the head turns.
MEDIAPIPE_FACE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
], dtype=np.int32)
