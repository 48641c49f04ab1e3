"""Running mediapipe's graphs on parts of an image, and mapping what they find back.

The perception stage looks again in crops where a whole-image pass misses someone: the
pose graph on a square around a person box, the selfie segmentation on overlapping tiles
(a small, far person is a few pixels in the model's 256-pixel input). The graphs come in
as arguments (anything with mediapipe's `process(rgb)`); the geometry is engine.perception.people.
"""
from __future__ import annotations

import numpy as np

from engine.perception.people import (SMALL_AREA_FRACTION, PersonCandidate, crop_box, extract_square, find_people,
                                      tile_boxes, uncrop_mask)

POSE_CROP_SIZE = 512  # fixed crop size: keeps the pose graph's input stable across frames
SEGMENTATION_TILE_SIZE = 256  # the selfie model's own input size: tiles are resampled to it
MIN_SMALL_PERSON_PX = 40  # shorter blobs are not looked at: no pose model reads them


# A NormalizedLandmark with only x, y, z set serialises as 17 bytes: the list's field tag
# and length (0x0a 0x0f), then a tag byte and a little-endian float32 for each of x, y, z.
_XYZ_RECORD_TAGS = np.array([0x0A, 0x0F, 0x0D, 0x15, 0x1D], np.uint8)
_XYZ_RECORD_TAG_AT = [0, 1, 2, 7, 12]
_XYZ_RECORD_FLOATS_AT = [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]


def landmarks_to_pixels(landmark_list, width: float, height: float) -> np.ndarray:
    """mediapipe NormalizedLandmarkList -> (N, 3) float32: x, y pixels; z scaled by width.

    Face mesh lists (x, y, z only) are read from their serialised bytes in one numpy step:
    reading 478 protobuf messages attribute by attribute cost 0.2 ms a frame, this 0.02.
    Lists in any other layout (pose landmarks carry visibility and presence) are read
    message by message."""
    items = landmark_list.landmark
    n = len(items)
    data = landmark_list.SerializeToString()
    arr = None
    if n and len(data) == 17 * n:
        records = np.frombuffer(data, np.uint8).reshape(n, 17)
        if (records[:, _XYZ_RECORD_TAG_AT] == _XYZ_RECORD_TAGS).all():
            # (the fancy index comes back column-major: copy to rows before viewing as floats)
            arr = records[:, _XYZ_RECORD_FLOATS_AT].copy().view("<f4").astype(np.float32, copy=False)
    if arr is None:
        arr = np.array([[p.x, p.y, p.z] for p in items], np.float32).reshape(n, 3)
    arr[:, 0] *= width
    arr[:, 1] *= height
    arr[:, 2] *= width
    return arr


def pose_in_square(pose_graph, rgb: np.ndarray, square: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A still-mode pose graph on one square of an image: (33, 3) landmarks in image pixels
    and (33,) visibility, or None."""
    out = pose_graph.process(extract_square(rgb, square, POSE_CROP_SIZE))
    if out.pose_landmarks is None:
        return None
    side = float(square[2] - square[0])
    pose = landmarks_to_pixels(out.pose_landmarks, side, side)
    pose[:, :2] += square[:2]
    return pose, np.array([p.visibility for p in out.pose_landmarks.landmark], np.float32)


def pose_in_box(pose_graph, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """(33, 3) pose landmarks (pixels) of a person filling `box`, found in a crop around it
    (tight, then loose): at least 8 visible landmarks spanning half the box's height with
    their centre inside it, else None (zoomed in, the model also "finds" people in a cup)."""
    for margin in (0.2, 0.6):
        found = pose_in_square(pose_graph, rgb, crop_box(box, margin))
        if found is None:
            continue
        pose, visibility = found
        seen = pose[visibility > 0.5, :2]
        if len(seen) >= 8 and np.ptp(seen[:, 1]) >= 0.5 * (box[3] - box[1]) \
                and box[0] <= seen[:, 0].mean() <= box[2] and box[1] <= seen[:, 1].mean() <= box[3]:
            return pose
    return None


def tiled_person_mask(selfie_graph, rgb: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """The person probability (H, W): the whole-image mask together with (maximum) the masks
    of overlapping tiles (people.tile_boxes), each mapped back. Small and far people the
    whole-image pass misses are found; a large person stays one blob (its whole-image mask
    joins the tiles' pieces). ~15 tiles at 720p, ~0.1 s."""
    height, width = rgb.shape[:2]
    mask = np.asarray(whole, np.float32).copy()
    for box in tile_boxes(width, height):
        tile = selfie_graph.process(extract_square(rgb, box, SEGMENTATION_TILE_SIZE)).segmentation_mask
        if tile is not None:
            np.maximum(mask, uncrop_mask(np.asarray(tile, np.float32), box, width, height), out=mask)
    return mask


def small_people(selfie_graph, rgb: np.ndarray, whole: np.ndarray) -> list[PersonCandidate]:
    """The people of the tiled mask (tiled_person_mask), down to SMALL_AREA_FRACTION of the
    image and MIN_SMALL_PERSON_PX tall, sorted left to right."""
    found = find_people(tiled_person_mask(selfie_graph, rgb, whole), min_area_fraction=SMALL_AREA_FRACTION)
    return [c for c in found if c.box[3] - c.box[1] >= MIN_SMALL_PERSON_PX]
