"""Writing .mp4 files headlessly (overlay.mp4, volume.mp4, recorder segments).

This OpenCV wheel writes through its bundled FFmpeg; 'mp4v' (MPEG-4 part 2) in an .mp4
container is what it can always encode (no H.264 encoder ships with it). MPEG-4 wants even
dimensions, so odd-sized images are padded by one black row/column.

A video has one frame size. The first image fixes it (scaled down to `max_side` when it is
larger: a 12000×9000 photo makes no playable mp4); every later image of another size is
letterboxed onto that canvas, so a folder of mixed photos is one video, not an error.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from engine.outputs.base import OutputItem, ThreadedOutput, check_image, letterbox

logger = logging.getLogger(__name__)

DEFAULT_FOURCC = "mp4v"
# Long side of the canvas at most: players and the bundled encoder handle 1080p-class
# frames everywhere; larger ones are scaled to fit.
DEFAULT_MAX_SIDE = 1920


class VideoWriterError(RuntimeError):
    """The video file could not be opened or written."""


def even_size(width: int, height: int) -> tuple[int, int]:
    """The smallest even (width, height) that holds width×height."""
    return width + (width & 1), height + (height & 1)


def canvas_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The even (width, height) a video whose first frame is width×height is written at:
    the frame's own size, or scaled down (aspect kept) so its long side is ≤ max_side."""
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(2, int(width * scale)), max(2, int(height * scale))
    return even_size(width, height)


def pad_to_even(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H', W', 3) with H', W' even; black padding at bottom/right."""
    h, w = image.shape[:2]
    ew, eh = even_size(w, h)
    if (ew, eh) == (w, h):
        return image
    return cv2.copyMakeBorder(image, 0, eh - h, 0, ew - w, cv2.BORDER_CONSTANT, value=(0, 0, 0))


class VideoWriter:
    """Synchronous writer: every image given to `write` lands in the file, in order.

    path: the .mp4 file (parent folders are created). fps: frames per second stored in the
    container. The frame size (`size`, even) is fixed by the first image, scaled down to
    `max_side` (None: never); images of another size are letterboxed onto it and counted in
    `frames_letterboxed`. The file is complete only after `close()`.
    """

    def __init__(self, path: Path | str, fps: float = 30.0, fourcc: str = DEFAULT_FOURCC,
                 max_side: int | None = DEFAULT_MAX_SIDE) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.max_side = max_side
        self.size: tuple[int, int] | None = None  # (width, height) as written, even
        self.frames_written = 0
        self.frames_letterboxed = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image_bgr: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR image."""
        check_image(image_bgr)
        if self._writer is None:
            self._open(image_bgr.shape[1], image_bgr.shape[0])
        frame = pad_to_even(image_bgr)
        if (frame.shape[1], frame.shape[0]) != self.size:
            if self.frames_letterboxed == 0 and self.frames_written:
                logger.info("%s: a %dx%d frame is letterboxed onto the video's %dx%d canvas",
                            self.path.name, image_bgr.shape[1], image_bgr.shape[0], *self.size)
            frame = letterbox(image_bgr, *self.size)
            self.frames_letterboxed += 1
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def _open(self, width: int, height: int) -> None:
        self.size = canvas_size(width, height, self.max_side)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size)
        if not writer.isOpened():
            raise VideoWriterError(
                f"OpenCV cannot write {self.path} ({self.fourcc!r}, {self.size[0]}x{self.size[1]} @ "
                f"{self.fps:g} fps): check the folder is writable and the extension matches the codec "
                f"('mp4v' in .mp4 always works with opencv-python's bundled FFmpeg)")
        self._writer = writer

    def close(self) -> None:
        """Finish the file (writes the mp4 index); idempotent."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            logger.debug("closed %s: %d frames", self.path, self.frames_written)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoFileOutput(ThreadedOutput):
    """The live-run variant: an `Output` that writes on its own thread, latest-wins (frames
    the disk cannot keep up with are dropped and counted). For offline processing, where
    every frame must be written, use `VideoWriter` directly."""

    name = "video_file"

    def __init__(self, path: Path | str, fps: float = 30.0, fourcc: str = DEFAULT_FOURCC) -> None:
        super().__init__()
        self.writer = VideoWriter(path, fps, fourcc)

    def _deliver(self, item: OutputItem) -> None:
        self.writer.write(item.image)

    def _release(self) -> None:
        self.writer.close()
