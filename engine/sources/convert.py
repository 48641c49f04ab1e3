"""Bring decoded images of any common layout to the pipeline's format: BGR uint8 H×W×3.

Policy (decided for holocap): 16-bit images are scaled by 1/257 (65535 -> 255), float
images are taken as 0..1 and scaled by 255, alpha is composited over black (transparent
pixels become black, whatever colour they stored), grayscale is replicated to three
channels. Each conversion is reported in one short note so the caller can log it once.
"""
from __future__ import annotations

import numpy as np

from engine.sources.errors import SourceError


def _to_uint8(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    if image.dtype == np.uint8:
        return image, None
    if image.dtype == np.uint16:
        # x / 257 maps 0..65535 exactly onto 0..255; +128 rounds to nearest.
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8), "16-bit scaled to 8-bit"
    if image.dtype.kind == "f":
        scaled = np.clip(np.nan_to_num(image.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5
        return scaled.astype(np.uint8), "floating-point (0..1) scaled to 8-bit"
    raise SourceError(f"unsupported pixel type {image.dtype}")


def _to_bgr(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise SourceError(f"unsupported image shape {image.shape}")
    channels = image.shape[2]
    if channels == 3:
        return image, None
    if channels == 1:
        return np.repeat(image, 3, axis=2), "grayscale replicated to BGR"
    if channels in (2, 4):
        colour = image[:, :, :channels - 1].astype(np.uint16)
        alpha = image[:, :, channels - 1:].astype(np.uint16)
        # Over black: c * a / 255, rounded.
        composited = ((colour * alpha + 127) // 255).astype(np.uint8)
        if channels == 2:
            composited = np.repeat(composited, 3, axis=2)
            return composited, "grayscale with alpha composited over black"
        return composited, "alpha composited over black"
    raise SourceError(f"unsupported number of channels: {channels}")


def to_bgr8(image: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Convert a decoded image to (H, W, 3) uint8 BGR, C-contiguous.

    image: (H, W) or (H, W, C) with C in {1, 2, 3, 4} (OpenCV order: BGR / BGRA / gray+alpha),
    dtype uint8, uint16 or float (0..1).
    Returns the converted image and the list of conversions applied (empty when the image
    was already BGR uint8). Raises SourceError for layouts that have no sensible reading.
    """
    if image.size == 0:
        raise SourceError("image has no pixels")
    notes: list[str] = []
    image, note = _to_uint8(image)
    if note:
        notes.append(note)
    image, note = _to_bgr(image)
    if note:
        notes.append(note)
    return np.ascontiguousarray(image), notes
