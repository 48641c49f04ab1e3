"""What every output shares: the `Output` protocol, the latest-wins hand-off and letterboxing.

An output receives the clean rendered view (no UI) as BGR images. `send` never blocks the
pipeline: it puts the newest image into a size-1 slot (replacing, and counting, an image the
output's thread has not taken yet); the output's own thread encodes and delivers it.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

import cv2
import numpy as np

from engine.slots import LatestSlot

logger = logging.getLogger(__name__)


# What a delivering thread may reasonably hit (disk full, device gone, codec refusal): logged
# as one line. Anything else is a bug: logged with its traceback. Either stops the output.
DELIVERY_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError, cv2.error)


@runtime_checkable
class Output(Protocol):
    """A sink for rendered images: virtual camera, MJPEG server, recorder, video file."""

    name: str

    def start(self) -> None:
        """Open the device/file/socket; raises when that is impossible."""
        ...

    def send(self, image_bgr: np.ndarray, frame_index: int, t: float) -> None:
        """Hand over one image: (H, W, 3) uint8 BGR; `t` in seconds (time.monotonic of
        capture). Returns at once; never blocks on I/O. The output keeps a reference, not a
        copy: the caller must not write into the array afterwards (send a fresh array per
        frame, or a copy; OutputGroup(copy_images=True) copies once for all outputs)."""
        ...

    def close(self) -> None:
        """Flush and release everything; idempotent."""
        ...


def letterbox_geometry(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Where an src_w×src_h image lands inside width×height, aspect kept.

    Returns (x0, y0, w, h) in output pixels: the scaled image covers [x0, x0+w) × [y0, y0+h),
    centred, with w, h ≥ 1.
    """
    if src_w <= 0 or src_h <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"letterbox needs positive sizes, got {src_w}x{src_h} -> {width}x{height}")
    scale = min(width / src_w, height / src_h)
    w = min(width, max(1, round(src_w * scale)))
    h = min(height, max(1, round(src_h * scale)))
    return (width - w) // 2, (height - h) // 2, w, h


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale `image` to fit width×height keeping its aspect ratio; pad the rest with black.

    image: (H, W, 3) or (H, W) uint8. Returns (height, width[, 3]) uint8, a new array
    (the input itself when it already has the target size).
    """
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    x0, y0, w, h = letterbox_geometry(src_w, src_h, width, height)
    # INTER_AREA avoids aliasing when shrinking a lot, but at factors like 1.5 it costs ~25 ms
    # for 1080p; above 1/2 scale INTER_LINEAR aliases little and takes ~1 ms.
    interp = cv2.INTER_AREA if w * 2 <= src_w else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (w, h), interpolation=interp)
    out = np.zeros((height, width) + image.shape[2:], dtype=image.dtype)
    out[y0:y0 + h, x0:x0 + w] = scaled
    return out


@dataclass(frozen=True)
class OutputItem:
    """One image in flight to an output.

    image: (H, W, 3) uint8 BGR, handed over by the caller (never written to by outputs).
    frame_index: the source frame's index. t: seconds, time.monotonic() at capture.
    extras: output-specific data (the recorder's results and meshes), or empty.
    """

    image: np.ndarray
    frame_index: int
    t: float
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputStats:
    """Counters of one output. received: images put into its slot. delivered: images its
    thread sent/wrote (the virtual camera counts repeats of the newest image too). dropped:
    images replaced in the slot before the thread took them, or sent while the output was
    not running (before start, after close or failure). failed: why it stopped, or None."""

    received: int
    delivered: int
    dropped: int
    failed: str | None


class ThreadedOutput:
    """Base for outputs that deliver on their own thread through a `LatestSlot`.

    Subclasses implement `_open()` (caller's thread, may raise), `_deliver(item)` (worker
    thread) and `_release()` (after the worker stopped); `_run()` may be overridden for
    paced delivery. A delivery error stops the output: it is logged once and reported in
    `stats.failed`; later `send`s are dropped.

    lossless (set before `start`): `send` waits for the output's thread to take the previous
    image instead of replacing it, so a headless run over a file records every frame. It
    waits at most `lossless_timeout_s` (then the image is dropped and counted), and never
    once the output failed or closed.
    """

    name: str = "output"
    lossless_timeout_s: float = 30.0

    def __init__(self) -> None:
        self._slot: LatestSlot[OutputItem] = LatestSlot()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._delivered = 0
        self._failed: str | None = None
        self._started = False
        self._closed = False

    # -- public API -------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        self._open()
        self._started = True
        self._thread = threading.Thread(target=self._worker, name=f"holocap-output-{self.name}", daemon=True)
        self._thread.start()

    def send(self, image_bgr: np.ndarray, frame_index: int, t: float) -> None:
        self._put(image_bgr, frame_index, t, {})

    @property
    def lossless(self) -> bool:
        return self._slot.block

    @lossless.setter
    def lossless(self, value: bool) -> None:
        self._slot.block = bool(value)

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._slot.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("%s: worker did not stop within %.1f s", self.name, timeout)
        if self._started:
            self._release()

    @property
    def stats(self) -> OutputStats:
        return OutputStats(received=self._slot.put_count, delivered=self._delivered,
                           dropped=self._slot.dropped, failed=self._failed)

    def __enter__(self) -> "ThreadedOutput":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for subclasses -------------------------------------------------------------------
    def _put(self, image_bgr: np.ndarray, frame_index: int, t: float, extras: Mapping[str, Any]) -> None:
        check_image(image_bgr)
        if self._failed is not None or not self._started:
            self._slot.count_drop()  # not started, closed or failed: nothing will take it
            return
        # No copy (a fresh 2.7 MB array per frame and output costs 1-3 ms in page faults):
        # the caller hands the image over and must not write into it afterwards.
        item = OutputItem(image_bgr, int(frame_index), float(t), extras)
        if not self._slot.put(item, timeout=self.lossless_timeout_s if self._slot.block else None):
            if self._slot.block and not self._slot.closed:
                self._slot.count_drop()  # a lossless put timed out: the output is stuck
                logger.warning("%s: frame %d dropped, the output took longer than %.0f s",
                               self.name, frame_index, self.lossless_timeout_s)

    def _open(self) -> None:
        """Open the device/file/socket on the caller's thread."""

    def _deliver(self, item: OutputItem) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Release what `_open` acquired; runs after the worker thread stopped."""

    def _run(self) -> None:
        """Default loop: deliver each image as it arrives."""
        while True:
            item = self._slot.get()
            if item is None:
                return
            self._deliver(item)
            self._delivered += 1

    # -- internals -----------------------------------------------------------------------
    def _worker(self) -> None:
        try:
            self._run()
        except DELIVERY_ERRORS as exc:
            self._failed = f"{type(exc).__name__}: {exc}"
            logger.error("%s output stopped: %s", self.name, self._failed)
            self._slot.close()
        except Exception as exc:
            # A bug, not an I/O failure: log the traceback, but still mark the output failed
            # so that send() stops queueing images nobody will take.
            self._failed = f"{type(exc).__name__}: {exc}"
            logger.exception("%s output crashed", self.name)
            self._slot.close()


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless `image` is (H, W, 3) uint8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"outputs take (H, W, 3) uint8 BGR images, got {desc}")
