"""The Source protocol and a moving-window frame-rate meter shared by the sources."""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from engine.frame import Frame


@runtime_checkable
class Source(Protocol):
    """Something that produces Frames (BGR uint8 H×W×3, running index, monotonic t_capture).

    Life cycle: `open()` once (raises `SourceError` with a one-line message on bad input),
    then `read()` until it returns None, then `close()`. `close()` may be called from
    another thread while `read()` blocks; `read()` then returns None promptly.
    """

    @property
    def source_id(self) -> str:
        """Identifies the source in Frames and logs ("camera:0", a file path, "synthetic:...")."""
        ...

    @property
    def nominal_fps(self) -> float:
        """Frames per second the source is meant to deliver (file rate, negotiated camera rate)."""
        ...

    @property
    def is_live(self) -> bool:
        """True for cameras: frames cannot be re-read and arrive at the device's pace."""
        ...

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended or was closed.

        Blocks for about one frame period at most in normal operation. A live camera never
        returns None for a transient failure: it reconnects (blocking, interruptible by
        `close()`).
        """
        ...

    def close(self) -> None: ...

    def info(self) -> dict[str, Any]:
        """JSON-able description for the HUD and logs (cameras: requested / negotiated /
        measured fps, resolution, FOURCC; files: frame count, position)."""
        ...


class FpsMeter:
    """Frames per second over the last `window` frames (time.monotonic() timestamps)."""

    def __init__(self, window: int = 30) -> None:
        self._stamps: collections.deque[float] = collections.deque(maxlen=max(2, window))

    def tick(self, t: float | None = None) -> None:
        self._stamps.append(time.monotonic() if t is None else t)

    def reset(self) -> None:
        self._stamps.clear()

    @property
    def fps(self) -> float:
        """0.0 until two frames were seen."""
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0


class Pacer:
    """Sleeps so that frame n is released no earlier than t0 + n / fps (file playback)."""

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._t0: float | None = None
        self._n = 0

    @property
    def period(self) -> float:
        """Seconds between frames on the source's own timeline (0 when the rate is unknown)."""
        return self._period

    def reset(self) -> None:
        self._t0, self._n = None, 0

    def wait(self, stop_wait: Callable[[float], object] | None = None) -> None:
        """Block until the next frame is due. `stop_wait(seconds)` (e.g. Event.wait) lets a
        closing thread cut the sleep short; it returns True when interrupted."""
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._n * self._period
        self._n += 1
        delay = due - now
        if delay <= 0:
            if delay < -2 * self._period - 0.1:
                # Far behind (the consumer stalled): restart the clock instead of bursting.
                self._t0, self._n = now, 1
            return
        if stop_wait is not None:
            stop_wait(delay)
        else:
            time.sleep(delay)


def release_frame(image, index: int, source_id: str, pacer: "Pacer | None",
                  stop: "threading.Event", name: str = "", period_s: float = 0.0) -> Frame | None:
    """The common end of a file-like source's read(): wait for the frame's due time when
    `pacer` is given (realtime playback; `stop` cuts the wait short), then stamp the
    capture time, and the frame's time on the file's own timeline (index x period_s) that
    temporal filters follow. Returns None when the source was closed while waiting."""
    if pacer is not None:
        pacer.wait(stop.wait)
        if stop.is_set():
            return None
    return Frame(image=image, index=index, t_capture=time.monotonic(), source_id=source_id, name=name,
                 t_media=index * period_s if period_s > 0 else None)
