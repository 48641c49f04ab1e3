"""Choosing one person when several are in view.

mediapipe's legacy pose graph tracks a single person. To let the user choose (and to
prefer the largest, most central person by default), person candidates are the connected
blobs of the selfie-segmentation mask; the chosen one's box becomes the crop the pose
graph sees. Pure functions over arrays: no mediapipe here.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_AREA_FRACTION = 0.004  # blobs smaller than this share of the image are noise
# With the tiled search (photos) a blob this small is still a person: ~80 px tall at 720p,
# which the pose model finds once its crop is scaled up.
SMALL_AREA_FRACTION = 0.0015
TILE_FRACTION = 0.6  # tiles of the tiled search: squares this share of the image's short side


@dataclass(frozen=True)
class PersonCandidate:
    """box: (4,) float32 x1, y1, x2, y2 pixels; area: mask pixels; centrality in [0, 1]."""

    box: np.ndarray
    area: int
    centrality: float

    @property
    def score(self) -> float:
        # Size matters most (the person nearest the camera), centrality breaks near-ties.
        return float(self.area) * (0.5 + 0.5 * self.centrality)


def find_people(mask: np.ndarray, threshold: float = 0.5,
                min_area_fraction: float = MIN_AREA_FRACTION) -> list[PersonCandidate]:
    """mask: (H, W) float person probability -> candidates sorted left to right."""
    h, w = mask.shape
    binary = (mask > threshold).astype(np.uint8)
    count, _labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    min_area = min_area_fraction * h * w
    diag = float(np.hypot(w, h)) / 2
    people = []
    for i in range(1, count):
        x, y, bw, bh, area = stats[i]
        if area < min_area:
            continue
        cx, cy = centroids[i]
        centrality = 1.0 - min(1.0, float(np.hypot(cx - w / 2, cy - h / 2)) / diag)
        people.append(PersonCandidate(np.array([x, y, x + bw, y + bh], np.float32), int(area), centrality))
    people.sort(key=lambda p: float(p.box[0]))
    return people


def tile_boxes(width: int, height: int, side_fraction: float = TILE_FRACTION) -> list[np.ndarray]:
    """Overlapping square tiles covering the image (each step half a tile): the segmentation
    model sees a 256-pixel version of its input, so a person ~100 px tall in a 1280x720
    frame is a few pixels there and is lost; in a tile it is three to four times larger.
    Returns (4,) float32 x1, y1, x2, y2 boxes inside the image."""
    side = side_fraction * min(width, height)
    boxes = []
    nx = int(np.ceil(max(width - side, 0.0) / (side / 2))) + 1
    ny = int(np.ceil(max(height - side, 0.0) / (side / 2))) + 1
    for i in range(nx):
        for j in range(ny):
            x = 0.0 if nx == 1 else i * (width - side) / (nx - 1)
            y = 0.0 if ny == 1 else j * (height - side) / (ny - 1)
            boxes.append(np.array([x, y, x + side, y + side], np.float32))
    return boxes


def box_intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area of two x1, y1, x2, y2 boxes, pixels²."""
    w = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    h = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    return w * h


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    inter = box_intersection(a, b)
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def choose_person(people: list[PersonCandidate], selection: int | None,
                  following: np.ndarray | None = None, min_iou: float = 0.2) -> PersonCandidate | None:
    """selection None: keep following the person whose box overlaps `following` (the box
    chosen last time), so passers-by don't steal the pose; with nobody to follow, the
    best-scoring (largest, most central) person. An int picks the selection-th person
    from the left (clamped)."""
    if not people:
        return None
    if selection is not None:
        return people[min(max(selection, 0), len(people) - 1)]
    if following is not None:
        overlap = [box_iou(p.box, following) for p in people]
        best = int(np.argmax(overlap))
        if overlap[best] >= min_iou:
            return people[best]
    return max(people, key=lambda p: p.score)


def crop_box(box: np.ndarray, margin: float = 0.2, min_side: float = 64.0) -> np.ndarray:
    """Expand a person box by `margin` of its size on every side and square it up around
    its centre (the pose model expects undistorted, roughly square input). The square may
    reach outside the image; `extract_square` pads it. Returns (4,) float32 x1, y1, x2, y2."""
    x1, y1, x2, y2 = box.astype(np.float64)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(max(x2 - x1, y2 - y1) * (1 + 2 * margin), min_side)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def extract_square(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square `box` of `image` (zero-padded where it leaves the image), resized to
    size×size. Landmarks found in it map back by x = x0 + u·side, y = y0 + v·side for
    normalised (u, v), side = box[2] − box[0]."""
    x0, y0, x1, _ = (float(v) for v in box)
    scale = size / (x1 - x0)
    # One affine warp does crop, pad and resize together.
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def smooth_box(previous: np.ndarray | None, new: np.ndarray, alpha: float = 0.3,
               jump: float = 0.5) -> np.ndarray:
    """Exponential smoothing of crop boxes so the pose graph's tracking sees a steady crop;
    a jump larger than `jump` of the box size (another person) resets it."""
    if previous is None:
        return new.astype(np.float32)
    size = max(float(previous[2] - previous[0]), float(previous[3] - previous[1]), 1.0)
    if np.abs(new - previous).max() > jump * size:
        return new.astype(np.float32)
    return (alpha * new + (1 - alpha) * previous).astype(np.float32)


def uncrop_mask(mask: np.ndarray, box: np.ndarray, width: int, height: int) -> np.ndarray:
    """Inverse of `extract_square` for a (S, S) mask: back to (height, width), 0 outside."""
    x0, y0, x1, _ = (float(v) for v in box)
    scale = mask.shape[1] / (x1 - x0)
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    return cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
