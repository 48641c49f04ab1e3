"""The part of a segmentation mask that belongs to the fitted body's person.

mediapipe's person mask holds whoever the segmentation saw: the followed person, someone
standing apart, and whatever the person holds or hugs, joined to them. The offline field's
hull fills what the mask shows but the body lacks, so it must follow the person's own part
of the mask wherever it reaches (a sign held at arm's length, a bag, the person being
hugged), and nothing else: the mask's connected regions that the body projects into.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from engine.volume.offline_field import Pinhole

NEAR_M = 0.05  # vertices closer to the camera than this do not project
# A region holding fewer of the body's projected vertices than this share is someone else
# the fit's edge happens to overlap (an arm's outline over a neighbour's blob).
MIN_VERTEX_SHARE = 0.05


def body_pixels(vertices: np.ndarray, camera: "Pinhole", image_size: tuple[int, int]) -> np.ndarray:
    """(V, 3) camera-space vertices -> (N, 2) int (col, row) pixels of those in front and in view."""
    h, w = image_size
    v = np.asarray(vertices, np.float64)
    v = v[v[:, 2] > NEAR_M]
    col = np.round(v[:, 0] / v[:, 2] * camera.focal_px + camera.cx).astype(np.int64)
    row = np.round(v[:, 1] / v[:, 2] * camera.focal_px + camera.cy).astype(np.int64)
    keep = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return np.column_stack((col[keep], row[keep]))


def person_mask(mask: np.ndarray, vertices: np.ndarray, camera: "Pinhole") -> np.ndarray:
    """mask: (H, W) bool; vertices: (V, 3) the fitted body, camera space, metres.

    Returns the (H, W) bool mask of the connected regions (8-connected) that hold at least
    MIN_VERTEX_SHARE of the body's in-view projected vertices, and always the one holding
    the most. A body that projects onto no mask pixel keeps the whole mask (the fit and the
    mask disagree; the silhouette still carves)."""
    m8 = np.ascontiguousarray(mask, dtype=np.uint8)
    count, labels = cv2.connectedComponents(m8, connectivity=8)
    if count <= 2:  # background and at most one region: nothing to choose
        return mask.astype(bool)
    px = body_pixels(vertices, camera, mask.shape[:2])
    hits = labels[px[:, 1], px[:, 0]] if len(px) else np.zeros(0, np.int32)
    hits = hits[hits > 0]
    if len(hits) == 0:
        return mask.astype(bool)
    per_label = np.bincount(hits, minlength=count)
    keep = per_label >= MIN_VERTEX_SHARE * len(px)
    keep[int(np.argmax(per_label))] = True
    keep[0] = False
    return keep[labels]


__all__ = ["person_mask", "body_pixels", "MIN_VERTEX_SHARE"]
