"""Screenshots: PNG files written atomically (a crash never leaves half a file)."""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path

import cv2
import numpy as np

from engine.outputs.atomic import atomic_write_bytes
from engine.outputs.base import check_image

logger = logging.getLogger(__name__)


def encode_png(image_bgr: np.ndarray, compression: int = 3) -> bytes:
    """(H, W, 3) uint8 BGR -> PNG bytes (compression 0..9: 3 is fast and still small)."""
    check_image(image_bgr)
    ok, buf = cv2.imencode(".png", image_bgr, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {image_bgr.shape}")
    return buf.tobytes()


def save_screenshot(image_bgr: np.ndarray, path: Path | str) -> Path:
    """Write `image_bgr` ((H, W, 3) uint8 BGR) as a PNG at `path`, atomically (temp file in
    the same folder, then rename). Parent folders are created. Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, encode_png(image_bgr))
    logger.info("screenshot saved: %s", path)
    return path


def screenshot_path(directory: Path | str, prefix: str = "holocap") -> Path:
    """A new file name in `directory`: <prefix>_YYYYmmdd_HHMMSS_fff.png (local time), with a
    numeric suffix if that name is taken."""
    directory = Path(directory)
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")[:-3]
    path = directory / f"{prefix}_{stamp}.png"
    n = 1
    while path.exists():
        path = directory / f"{prefix}_{stamp}_{n}.png"
        n += 1
    return path
