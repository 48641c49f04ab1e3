"""The PIFu back-end's per-frame input: the person cropped to PIFu's 512 x 512 in-the-wild frame.

PIFu's apps/eval.py takes a square image with the person roughly filling its height, the
background zeroed by the person mask, and the orthographic calib diag(1, -1, 1, 1): the
crop's pixel square is the cube's x-y face (x right, y down in image terms; engine.volume.pifu
turns the cube's y-down, z-away axes into PIFu's y-up, z-towards world). So the novel views
of this back-end show the person at the crop's scale.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from engine.volume.pifu import LOAD_SIZE, PifuField, PifuModel, image_tensor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PifuCrop:
    """rgb: (512, 512, 3) uint8 RGB; mask: (512, 512) float32 in [0, 1];
    box: (4,) float64 x0, y0, side, scale: crop pixel = (frame pixel - (x0, y0)) * scale."""

    rgb: np.ndarray
    mask: np.ndarray
    box: np.ndarray


def pifu_crop(image_bgr: np.ndarray, segmentation: np.ndarray, threshold: float = 0.5,
              fill: float = 0.9, size: int = LOAD_SIZE) -> PifuCrop | None:
    """Square crop around the mask's bounding box, the person spanning `fill` of the side,
    scaled to `size` (zeros outside the frame). image_bgr: (H, W, 3) uint8; segmentation:
    (H, W) float person probability. None when the mask is empty."""
    rows, cols = np.nonzero(segmentation > threshold)
    if len(rows) == 0:
        return None
    cx, cy = 0.5 * (cols.min() + cols.max() + 1), 0.5 * (rows.min() + rows.max() + 1)
    side = max(cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()) / fill
    scale = size / side
    x0, y0 = cx - 0.5 * side, cy - 0.5 * side
    # Pixel centres: crop pixel j + 0.5 = (frame pixel + 0.5 - x0) * scale.
    m = np.array([[scale, 0.0, (0.5 - x0) * scale - 0.5], [0.0, scale, (0.5 - y0) * scale - 0.5]])
    rgb = cv2.warpAffine(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mask = cv2.warpAffine(segmentation.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return PifuCrop(rgb=rgb, mask=np.clip(mask, 0.0, 1.0), box=np.array([x0, y0, side, scale]))


def pifu_field_for_frame(model: PifuModel, image_bgr: np.ndarray, segmentation: np.ndarray,
                         threshold: float = 0.5) -> PifuField | None:
    """Filter one frame's crop (image times the binarised mask) and wrap it for localize/render."""
    crop = pifu_crop(image_bgr, segmentation, threshold)
    if crop is None:
        return None
    x = image_tensor(crop.rgb, crop.mask > threshold)
    with torch.inference_mode():
        return PifuField.from_image(model, x)


__all__ = ["PifuCrop", "pifu_crop", "pifu_field_for_frame"]
