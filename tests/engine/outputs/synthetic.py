"""Synthetic frames that carry their own frame index, so a receiver can tell which one it got.

The index is written as INDEX_BITS vertical bars across the image (white = 1, black = 0,
most significant bit left); bars are wide, so JPEG/MPEG-4 compression cannot flip a bit
read at a bar's centre.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

INDEX_BITS = 12


def index_image(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """(height, width, 3) uint8 BGR image encoding `index` (mod 2**INDEX_BITS)."""
    bits = [(index >> (INDEX_BITS - 1 - k)) & 1 for k in range(INDEX_BITS)]
    columns = np.repeat(np.array(bits, np.uint8) * 255, -(-width // INDEX_BITS))[:width]
    return np.repeat(np.repeat(columns[None, :, None], height, 0), 3, 2)


def decode_index(image: np.ndarray) -> int:
    """Read back the index from an image made by `index_image` (possibly compressed)."""
    h, w = image.shape[:2]
    bar = -(-w // INDEX_BITS)
    value = 0
    for k in range(INDEX_BITS):
        x = min(w - 1, k * bar + bar // 2)
        value = (value << 1) | int(image[h // 2, x].mean() > 127)
    return value


def bar_centres(width: int) -> list[int]:
    """x of each bar's centre, for decoders outside Python (the browser test's JS)."""
    bar = -(-width // INDEX_BITS)
    return [min(width - 1, k * bar + bar // 2) for k in range(INDEX_BITS)]


class Feeder:
    """A thread calling send(image, index, t) at `fps` with index images, like a pipeline."""

    def __init__(self, send: Callable[[np.ndarray, int, float], None], fps: float = 30.0,
                 width: int = 320, height: int = 240) -> None:
        self.sent = 0
        self._send, self._period, self._size = send, 1.0 / fps, (width, height)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t_next = time.monotonic()
        while not self._stop.is_set():
            self._send(index_image(self.sent, *self._size), self.sent, time.monotonic())
            self.sent += 1
            t_next += self._period
            self._stop.wait(max(0.0, t_next - time.monotonic()))

    def __enter__(self) -> "Feeder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
