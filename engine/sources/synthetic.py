"""A deterministic synthetic source for tests and demos: a moving pattern, or frames from a
caller-given provider, at a given size and rate."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.frame import Frame
from engine.sources.base import Pacer, release_frame
from engine.sources.convert import to_bgr8
from engine.sources.errors import SourceError

FrameProvider = Callable[[int], "np.ndarray | None"]
"""provider(index) -> image (any layout `to_bgr8` accepts) or None to end the stream."""


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """The built-in test pattern for frame `index`: (height, width, 3) uint8 BGR.

    A colour gradient scrolling one pixel per frame, a white disc moving on a circle
    (period 120 frames) and an 8-bit binary code of the index in the top-left corner
    (16×16 px cells, white = 1), so frames are distinct and the index can be read back.
    Depends only on its arguments. Built from 1-D ramps (broadcast) so that 720p costs a
    few ms, not tens.
    """
    xs = np.arange(width, dtype=np.int64)
    ys = np.arange(height, dtype=np.int64)
    image = np.empty((height, width, 3), np.uint8)
    image[:, :, 0] = (((xs + index) * 255 // max(1, width - 1)) % 256).astype(np.uint8)[None, :]
    image[:, :, 1] = (((ys + index) * 255 // max(1, height - 1)) % 256).astype(np.uint8)[:, None]
    # uint8 addition wraps modulo 256, which is the intended pattern.
    image[:, :, 2] = ((xs // 4 + index // 2) % 256).astype(np.uint8)[None, :] + (ys // 4 % 256).astype(np.uint8)[:, None]
    angle = 2 * np.pi * (index % 120) / 120
    cx = width / 2 + 0.3 * width * np.cos(angle)
    cy = height / 2 + 0.3 * height * np.sin(angle)
    radius = max(2.0, 0.08 * min(width, height))
    x0, x1 = max(0, int(cx - radius)), min(width, int(cx + radius) + 1)
    y0, y1 = max(0, int(cy - radius)), min(height, int(cy + radius) + 1)
    if x0 < x1 and y0 < y1:
        inside = (xs[None, x0:x1] - cx) ** 2 + (ys[y0:y1, None] - cy) ** 2 <= radius ** 2
        image[y0:y1, x0:x1][inside] = 255
    cell = 16
    if cell <= height:
        for bit in range(min(8, width // cell)):
            image[:cell, bit * cell:(bit + 1) * cell] = 255 if (index >> bit) & 1 else 0
    return image


def read_pattern_index(image: np.ndarray) -> int:
    """Decode the 8-bit index code of `pattern_frame` (index mod 256)."""
    return sum(1 << bit for bit in range(8) if image[8, bit * 16 + 8].mean() > 127)


class SyntheticSource:
    """Deterministic frames: `pattern_frame` or `provider(index)`.

    frames: how many frames before the end (None: endless). loop: restart at 0 after
    `frames` (or when the provider returns None). realtime: pace to `fps`. live: report
    is_live=True so the pipeline treats it like a camera.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, *, frames: int | None = None,
                 provider: FrameProvider | None = None, loop: bool = False, realtime: bool = False,
                 live: bool = False) -> None:
        if width < 1 or height < 1 or width > 16384 or height > 16384:
            raise SourceError(f"synthetic size {width}x{height} is out of range (1..16384)")
        if not fps > 0:
            raise SourceError(f"synthetic fps must be positive, got {fps}")
        self._size = (int(width), int(height))
        self._fps = float(fps)
        self._frames = frames
        self._provider = provider
        self._loop = loop
        self._realtime = realtime
        self._live = live
        self._pacer = Pacer(self._fps)
        self._stop = threading.Event()
        self._pos = 0
        self._index = 0

    @classmethod
    def from_images(cls, images: "list[np.ndarray]", fps: float = 30.0, **kwargs: Any) -> "SyntheticSource":
        """A source that plays `images` (any layout `to_bgr8` accepts, all the same size) in order."""
        if not images:
            raise SourceError("synthetic source needs at least one image")
        h, w = np.asarray(images[0]).shape[:2]
        return cls(w, h, fps, frames=len(images), provider=lambda i: images[i], **kwargs)

    @property
    def source_id(self) -> str:
        w, h = self._size
        return f"synthetic:{w}x{h}@{self._fps:g}"

    @property
    def nominal_fps(self) -> float:
        return self._fps

    @property
    def endless(self) -> bool:
        """No last frame: a headless run over it cuts its files into segments."""
        return self._frames is None or self._loop

    @property
    def is_live(self) -> bool:
        return self._live

    def open(self) -> None:
        self._stop.clear()
        self._pos, self._index = 0, 0
        self._pacer.reset()

    def _make(self, pos: int) -> np.ndarray | None:
        if self._frames is not None and pos >= self._frames:
            return None
        if self._provider is None:
            return pattern_frame(pos, *self._size)
        image = self._provider(pos)
        return None if image is None else to_bgr8(np.asarray(image))[0]

    def read(self) -> Frame | None:
        if self._stop.is_set():
            return None
        image = self._make(self._pos)
        if image is None and self._loop and self._pos > 0:
            self._pos = 0
            image = self._make(0)
        if image is None:
            return None
        self._pos += 1
        frame = release_frame(image, self._index, self.source_id,
                              self._pacer if self._realtime else None, self._stop,
                              period_s=self._pacer.period)
        if frame is not None:
            self._index += 1
        return frame

    def close(self) -> None:
        self._stop.set()

    def info(self) -> dict[str, Any]:
        w, h = self._size
        return {"kind": "synthetic", "width": w, "height": h, "fps": self._fps, "frames": self._frames,
                "position": self._index, "loop": self._loop}
