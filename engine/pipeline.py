"""The live pipeline: capture thread -> worker thread (stages in order) -> consumers.

Capture and worker are joined by a size-1 latest-frame-wins slot, so capture never waits
for inference and the consumer always sees the newest result; frames replaced before the
worker took them are dropped and counted. A stage that raises is logged, counted and
skipped for that frame. The pipeline knows nothing of Qt: consumers register callbacks
(called on the worker thread) or pull `latest()`; the app turns them into Qt signals.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from engine.frame import Frame
from engine.slots import LatestSlot
from engine.stage import Result, Stage

log = logging.getLogger(__name__)

Consumer = Callable[["FrameResult"], None]
STOP_TIMEOUT_S = 1.0


@dataclass
class FrameResult:
    """One frame with what each stage made of it.

    results: stage name -> Result, or None when the stage found nothing or failed.
    timings_ms: stage name -> wall milliseconds spent in its process().
    errors: stage name -> one-line error, for stages that raised on this frame.
    t_done: time.monotonic() when the last stage finished.
    """

    frame: Frame
    results: dict[str, Result | None] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    t_done: float = 0.0

    def get(self, stage: str) -> Any:
        return self.results.get(stage)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frame": self.frame.index,
            "t": round(self.frame.t_capture, 6),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        for name, result in self.results.items():
            out[name] = None if result is None else result.to_json()
        if self.errors:
            out["errors"] = dict(self.errors)
        return out


@dataclass(frozen=True)
class PipelineStats:
    frames_read: int
    frames_processed: int
    frames_dropped: int
    capture_fps: float
    process_fps: float
    stage_ms: dict[str, float]  # median over the recent window
    stage_errors: dict[str, int]
    latency_ms: float  # median capture -> all stages done, recent window
    running: bool
    source_error: str | None = None


class _RateMeter:
    """Events per second over a sliding window of timestamps."""

    def __init__(self, window: int = 60) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, t: float) -> None:
        self._times.append(t)

    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Pipeline:
    """Runs `stages` over frames from `source` on two threads.

    source: an object with `read() -> Frame | None` (None = ended) and `close()`.
    lossless: block capture until the worker took the previous frame (offline runs over a
        file: every frame processed, none dropped). Live sources use latest-wins.
    owns_stages: close the stages when the pipeline stops (False when the caller keeps its
        loaded models for the next source, as the GUI does).
    """

    def __init__(self, source: Any, stages: Sequence[Stage], *, lossless: bool = False,
                 owns_stages: bool = True, window: int = 100) -> None:
        self.source = source
        self.stages = list(stages)
        self._slot: LatestSlot[Frame] = LatestSlot(block=lossless)
        self._consumers: list[Consumer] = []
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._latest: FrameResult | None = None
        self._threads: list[threading.Thread] = []
        self._stage_ms: dict[str, deque[float]] = {s.name: deque(maxlen=window) for s in self.stages}
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._stage_errors: dict[str, int] = {s.name: 0 for s in self.stages}
        self._capture_rate, self._process_rate = _RateMeter(), _RateMeter()
        self.frames_read = 0
        self.frames_processed = 0
        self.source_error: str | None = None
        self._stages_closed = not owns_stages

    # -- consumers ---------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        with self._lock:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        with self._lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    def latest(self) -> FrameResult | None:
        """The newest finished FrameResult (for views that pull on their own timer)."""
        with self._lock:
            return self._latest

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            raise RuntimeError("pipeline already started")
        self._threads = [
            threading.Thread(target=self._capture_loop, name="holocap-capture", daemon=True),
            threading.Thread(target=self._worker_loop, name="holocap-worker", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop both threads; returns True when they ended within `timeout` seconds.

        A stage in the middle of a long process() cannot be interrupted: then the worker
        thread (a daemon) finishes that frame on its own and closes the stages itself.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._slot.close()
        try:
            self.source.close()  # sources allow close() from another thread: wakes a blocked read
        except Exception:
            log.exception("closing the source failed")
        ok = True
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            ok &= not t.is_alive()
        if not ok:
            log.warning("pipeline threads still busy after %.1f s; they will finish on their own", timeout)
        return ok

    def join(self, timeout: float | None = None) -> bool:
        """Wait for both threads to end (after stop()): a stage finishing its frame in
        native code must not be cut off by interpreter exit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source ended and every frame was processed (or timeout)."""
        return self._ended.wait(timeout)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stats(self) -> PipelineStats:
        return PipelineStats(
            frames_read=self.frames_read,
            frames_processed=self.frames_processed,
            frames_dropped=self._slot.dropped,
            capture_fps=self._capture_rate.rate(),
            process_fps=self._process_rate.rate(),
            stage_ms={k: float(np.median(v)) if v else 0.0 for k, v in self._stage_ms.items()},
            stage_errors=dict(self._stage_errors),
            latency_ms=float(np.median(self._latency_ms)) if self._latency_ms else 0.0,
            running=self.running,
            source_error=self.source_error,
        )

    # -- threads -----------------------------------------------------------------------
    def _capture_loop(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.frames_read += 1
                self._capture_rate.tick(time.monotonic())
                while not self._slot.put(frame, timeout=0.1):
                    if self._stop.is_set() or self._slot.closed:
                        return
        except Exception as exc:  # a broken source must not kill the app: report it
            self.source_error = f"{type(exc).__name__}: {exc}"
            log.exception("source failed")
        finally:
            self._slot.close()  # lets the worker drain the last frame and end

    def _worker_loop(self) -> None:
        try:
            while True:
                frame = self._slot.get(timeout=0.1)
                if frame is None:
                    if self._slot.closed and self._slot.peek() is None:
                        break
                    continue
                result = self.process_frame(frame)
                self._publish(result)
                if self._stop.is_set():
                    break
        finally:
            self._ended.set()
            if self._stop.is_set():
                self._close_stages()

    def process_frame(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame; a failing stage yields None and an error entry."""
        result = FrameResult(frame=frame)
        for stage in self.stages:
            t0 = time.perf_counter()
            try:
                result.results[stage.name] = stage.process(frame, result.results)
            except Exception as exc:
                self._stage_errors[stage.name] += 1
                result.results[stage.name] = None
                result.errors[stage.name] = f"{type(exc).__name__}: {exc}"
                count = self._stage_errors[stage.name]
                if count == 1 or count % 100 == 0:  # log the first and then every 100th
                    log.error("stage %s failed on frame %d (%d so far): %s", stage.name,
                              frame.index, count, exc, exc_info=count == 1)
            ms = (time.perf_counter() - t0) * 1000.0
            result.timings_ms[stage.name] = ms
            self._stage_ms[stage.name].append(ms)
        result.t_done = time.monotonic()
        self._latency_ms.append((result.t_done - frame.t_capture) * 1000.0)
        self.frames_processed += 1
        self._process_rate.tick(result.t_done)
        return result

    def _publish(self, result: FrameResult) -> None:
        with self._lock:
            self._latest = result
            consumers = list(self._consumers)
        for consumer in consumers:
            try:
                consumer(result)
            except Exception:
                log.exception("result consumer %r failed", consumer)

    def _close_stages(self) -> None:
        with self._lock:
            if self._stages_closed:
                return
            self._stages_closed = True
        for stage in self.stages:
            try:
                stage.close()
            except Exception:
                log.exception("closing stage %s failed", stage.name)

    def close(self) -> None:
        """Stop, then close stages and the source (safe to call twice)."""
        self.stop()
        if not self.running:
            self._close_stages()
