"""3DDFA_V2's region of interest: from a face box or from landmarks, then the 120x120 crop.

All boxes are (4,) [x1, y1, x2, y2] in image pixels (x right, y down) of the full frame.
The arithmetic follows the official preprocessing (see SPEC section A) so that ROIs match
the official ones to float precision.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

INPUT_SIZE = 120  # side of the square network input, pixels
PIXEL_MEAN = 127.5
PIXEL_SCALE = 128.0

# ROI from a face-detector box: centre moved down by this fraction of the box size,
# side = int(BOX_SCALE * mean box side); the values the official models were trained with.
BOX_CENTRE_SHIFT = 0.14
BOX_SCALE = 1.58


def roi_from_box(box: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """ROI (4,) float64 [sx, sy, ex, ey] from a detector box [x1, y1, x2, y2, (score)].

    The side is truncated to an integer (as the official code does); the centre is not.
    Differences are taken in the box's own precision (float32 for FaceBoxes-style boxes)
    and the rest in float64, as numpy 1.x evaluates the official expression.
    """
    box = np.asarray(box)
    left, top, right, bottom = (box[i] for i in range(4))
    w = right - left
    h = bottom - top
    old_size = float(w + bottom - top) / 2.0
    cx = float(right) - float(w) / 2.0
    cy = float(bottom) - float(h) / 2.0 + old_size * BOX_CENTRE_SHIFT
    size = int(old_size * BOX_SCALE)
    half = size / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float64)


def roi_from_landmarks(points: np.ndarray) -> np.ndarray:
    """ROI (4,) float64 from landmarks (K, 2+) image pixels (tracking from the previous frame).

    The points' bounding box is made square (side max(w, h), same centre) and then
    enlarged to side sqrt(2) * max(w, h) around that centre.
    """
    pts = np.asarray(points, np.float64)[:, :2]
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = math.sqrt(2.0) * max(x2 - x1, y2 - y1)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float64)


def roi_area(roi: np.ndarray) -> float:
    """Area of a ROI in square pixels (0 when degenerate)."""
    return float(max(roi[2] - roi[0], 0.0) * max(roi[3] - roi[1], 0.0))


def round_roi(roi: np.ndarray) -> tuple[int, int, int, int]:
    """Integer crop corners: Python's round (half to even), as the official crop uses."""
    sx, sy, ex, ey = (int(round(float(v))) for v in roi[:4])
    return sx, sy, ex, ey


def crop_zero_padded(image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Crop `roi` out of `image` (H, W, C) uint8, filling the part outside the image with 0.

    Returns (ey - sy, ex - sx, C) uint8 for the rounded ROI corners; a ROI fully outside
    the image gives an all-zero crop.
    """
    sx, sy, ex, ey = round_roi(roi)
    h, w = image.shape[:2]
    out = np.zeros((max(ey - sy, 0), max(ex - sx, 0)) + image.shape[2:], np.uint8)
    # Overlap of the ROI and the image, in image and in crop coordinates.
    ix1, iy1, ix2, iy2 = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if ix2 > ix1 and iy2 > iy1:
        out[iy1 - sy:iy2 - sy, ix1 - sx:ix2 - sx] = image[iy1:iy2, ix1:ix2]
    return out


def network_crop(image_bgr: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The (120, 120, 3) uint8 BGR network input: zero-padded crop, bilinear resize."""
    crop = crop_zero_padded(image_bgr, roi)
    if crop.size == 0:
        raise ValueError(f"empty ROI {roi.tolist()}")
    return cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)


def normalise_crop(crop_bgr: np.ndarray) -> np.ndarray:
    """(120, 120, 3) uint8 BGR -> (3, 120, 120) float32, (x - 127.5) / 128, channels stay BGR."""
    chw = np.ascontiguousarray(crop_bgr.transpose(2, 0, 1), dtype=np.float32)
    chw -= PIXEL_MEAN
    chw /= PIXEL_SCALE
    return chw
