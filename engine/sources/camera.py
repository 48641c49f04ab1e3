"""A live camera as a source: opened by index or name, MJPG preferred, reconnecting with
exponential backoff when the device disappears, so the pipeline stays up.

Threading: `read()` runs on the capture thread; `close()` may come from any thread and
interrupts a backoff wait at once (threading.Event). Every blocking wait has a timeout.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from engine.frame import Frame
from engine.sources.base import FpsMeter
from engine.sources.convert import to_bgr8
from engine.sources.devices import CameraInfo, CameraMode, fourcc_to_str, list_cameras
from engine.sources.errors import SourceError

log = logging.getLogger(__name__)

DEFAULT_MODE = CameraMode(1280, 720, 30.0, "MJPG")  # most webcams reach 720p30 only with MJPG
READ_TIMEOUT_MS = 2000  # a stalled device read gives up after this (where the backend supports it)
CLOSE_LOCK_TIMEOUT_S = 0.5


class CaptureDevice(Protocol):
    """The part of cv2.VideoCapture a camera source uses (tests pass fakes)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


DeviceOpener = Callable[[int, CameraMode], CaptureDevice]
"""opener(index, requested_mode) -> an open device; raises SourceError (or OSError) when it cannot."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """Backoff between reconnect attempts: initial_s, doubling (factor) up to max_s, forever."""

    initial_s: float = 0.25
    max_s: float = 4.0
    factor: float = 2.0


def backoff_delays(policy: ReconnectPolicy) -> Iterator[float]:
    """0.25, 0.5, 1, 2, 4, 4, ... seconds for the default policy (endless)."""
    delay = policy.initial_s
    while True:
        yield delay
        delay = min(policy.max_s, delay * policy.factor)


def open_cv2_camera(index: int, mode: CameraMode) -> cv2.VideoCapture:
    """Open camera `index` with OpenCV (V4L2 on Linux), requesting `mode`'s FOURCC first (the
    driver picks sizes per format), then size and rate. Raises SourceError when it fails."""
    linux = sys.platform.startswith("linux")
    if linux:
        cameras = list_cameras(with_modes=False)
        if all(c.index != index for c in cameras):
            available = ", ".join(f"{c.index} '{c.name}'" for c in cameras) or "none"
            raise SourceError(f"camera {index} does not exist (available: {available})")
    cap = cv2.VideoCapture(index, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"camera {index} could not be opened (missing, busy, or no permission)")
    if mode.fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*mode.fourcc.ljust(4)))
    if mode.width and mode.height:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, mode.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, mode.height)
    if mode.fps:
        cap.set(cv2.CAP_PROP_FPS, mode.fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of stale ones
    cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS)  # best effort; ignored where unsupported
    return cap


def resolve_camera_name(name: str, cameras: list[CameraInfo]) -> int:
    """Index of the camera called `name`: exact (case-insensitive) match first, else a unique
    substring. Raises SourceError naming the available cameras."""
    available = ", ".join(f"{c.index} '{c.name}'" for c in cameras) or "none"
    wanted = name.strip().lower()
    exact = [c for c in cameras if c.name.lower() == wanted]
    if exact:
        return exact[0].index
    partial = [c for c in cameras if wanted in c.name.lower()]
    if len(partial) == 1:
        return partial[0].index
    if partial:
        raise SourceError(f"camera name '{name}' is ambiguous (matches: {', '.join(c.name for c in partial)})")
    raise SourceError(f"no camera named '{name}' (available: {available})")


class CameraSource:
    """Frames from a webcam.

    target: OpenCV index (int) or a device name (str, resolved through `lister` at every
      (re)connect, since a replugged camera may come back under another index).
    mode: requested size / fps / FOURCC (default 1280x720@30 MJPG); what the driver gave is
      in info()["negotiated"], the measured rate in info()["measured_fps"].
    opener, lister: injectable for tests (defaults: OpenCV, /sys/class/video4linux).
    on_state: called with "streaming" | "reconnecting" | "closed" when the state changes
      (from the capture thread).
    """

    def __init__(self, target: int | str, *, mode: CameraMode | None = None, opener: DeviceOpener | None = None,
                 lister: Callable[[], list[CameraInfo]] | None = None, policy: ReconnectPolicy = ReconnectPolicy(),
                 on_state: Callable[[str], None] | None = None) -> None:
        self._target = target
        self._mode = mode or DEFAULT_MODE
        self._opener = opener or open_cv2_camera
        self._lister = lister or (lambda: list_cameras(with_modes=False))
        self._policy = policy
        self._on_state = on_state
        self._dev: CaptureDevice | None = None
        self._index_now: int | None = target if isinstance(target, int) else None
        self._negotiated = CameraMode(0, 0)
        self._meter = FpsMeter(30)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "closed"
        self._frames = 0
        self._reconnects = 0
        self._noted = False

    @property
    def source_id(self) -> str:
        return f"camera:{self._target}"

    @property
    def nominal_fps(self) -> float:
        return self._negotiated.fps or self._mode.fps or 30.0

    @property
    def is_live(self) -> bool:
        return True

    @property
    def state(self) -> str:
        return self._state

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            if self._on_state is not None:
                self._on_state(state)

    def _resolve_index(self) -> int:
        if isinstance(self._target, int):
            return self._target
        return resolve_camera_name(self._target, self._lister())

    def _connect(self) -> None:
        """Open the device and read back what was negotiated. Raises SourceError."""
        index = self._resolve_index()
        try:
            dev = self._opener(index, self._mode)
        except OSError as exc:
            raise SourceError(f"camera {index} could not be opened: {exc}") from exc
        except cv2.error as exc:
            raise SourceError(f"camera {index} could not be opened: {str(exc).strip().splitlines()[-1]}") from exc
        self._negotiated = CameraMode(int(dev.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
                                      int(dev.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
                                      float(dev.get(cv2.CAP_PROP_FPS) or 0.0),
                                      fourcc_to_str(dev.get(cv2.CAP_PROP_FOURCC) or 0))
        self._index_now = index
        self._meter.reset()
        with self._lock:
            self._dev = dev
        log.info("camera %s (index %d): requested %s, negotiated %s", self._target, index, self._mode,
                 self._negotiated)

    def open(self) -> None:
        if isinstance(self._target, int) and self._target < 0:
            raise SourceError(f"camera index must be 0 or more, got {self._target}")
        self._stop.clear()
        self._connect()
        self._set_state("streaming")

    def _release(self) -> None:
        with self._lock:
            dev, self._dev = self._dev, None
        if dev is not None:
            try:
                dev.release()
            except cv2.error as exc:
                log.warning("camera %s: release failed: %s", self._target, exc)

    def _reconnect(self) -> bool:
        """Retry until connected (True) or closed (False), waiting per the backoff policy."""
        self._set_state("reconnecting")
        for attempt, delay in enumerate(backoff_delays(self._policy), start=1):
            if self._stop.wait(delay):
                return False
            try:
                self._connect()
            except SourceError as exc:
                log.warning("camera %s: reconnect attempt %d failed (%s); next in %.2g s", self._target, attempt,
                            exc, min(self._policy.max_s, delay * self._policy.factor))
                continue
            if self._stop.is_set():  # closed while we were opening
                self._release()
                return False
            self._reconnects += 1
            log.info("camera %s: reconnected after %d attempt(s)", self._target, attempt)
            self._set_state("streaming")
            return True
        return False  # unreachable: the delays are endless

    def _read_device(self) -> np.ndarray | None:
        with self._lock:
            dev = self._dev
            if dev is None:
                return None
            try:
                ok, image = dev.read()
            except cv2.error as exc:
                log.warning("camera %s: read failed: %s", self._target, str(exc).strip().splitlines()[-1])
                return None
        if not ok or image is None or image.size == 0:
            return None
        return image

    def read(self) -> Frame | None:
        if self._state == "closed":  # never opened (or closed): nothing to reconnect to
            return None
        while not self._stop.is_set():
            image = self._read_device()
            if self._stop.is_set():
                break
            if image is None:
                log.warning("camera %s stopped delivering frames; reconnecting", self._target)
                self._release()
                if not self._reconnect():
                    break
                continue
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                image, notes = to_bgr8(image)
                if notes and not self._noted:
                    self._noted = True
                    log.info("camera %s delivers %s", self._target, ", ".join(notes))
            t = time.monotonic()
            self._meter.tick(t)
            frame = Frame(image=np.ascontiguousarray(image), index=self._frames, t_capture=t,
                          source_id=self.source_id)
            self._frames += 1
            return frame
        self._release()
        return None

    def close(self) -> None:
        self._stop.set()
        # A read blocked in the driver holds the lock; it releases the device itself on return.
        if self._lock.acquire(timeout=CLOSE_LOCK_TIMEOUT_S):
            self._lock.release()
            self._release()
        self._set_state("closed")

    def info(self) -> dict[str, Any]:
        n = self._negotiated
        return {"kind": "camera", "target": self._target, "index": self._index_now, "state": self._state,
                "requested": {"width": self._mode.width, "height": self._mode.height, "fps": self._mode.fps,
                              "fourcc": self._mode.fourcc},
                "negotiated": {"width": n.width, "height": n.height, "fps": n.fps, "fourcc": n.fourcc},
                "measured_fps": round(self._meter.fps, 2), "frames": self._frames, "reconnects": self._reconnects}
