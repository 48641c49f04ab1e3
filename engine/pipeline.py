"""The pipeline: a scheduler that overlaps the stages, Qt-free.

Data flows one way:

    source -> [capture] -> slot -> [step 0: perception] -> slot -> [step 1: face | body]
           -> slot -> [publish] -> consumers (the GUI's notification, outputs, files)
                  \\-> slot -> [background: volume] -> its newest result rides on the
                                                      next published FrameResult

* Steps come from the stages' dependencies (`requires`, see engine.stage_protocol): a stage
  runs in the first step after everything it reads from the context. Stages of one step run
  concurrently on one frame (face and body both need only perception, so neither waits for
  the other), and every step has its own thread, so step 0 works on frame N+1 while step 1
  fits frame N.
* Between every pair of threads sits a size-1 slot (engine.slots.LatestSlot). Live sources:
  the newest item wins and a replaced one is dropped and counted for the stage(s) that
  never saw it. Lossless runs (headless over a file): every put waits, so every frame goes
  through every stage, in order, with the same overlap.
* Background stages (live runs only; `background`, by default the volume) run on their own
  worker at their own rate, always on the newest published frame; they never delay the
  per-frame stages. Each FrameResult carries their newest result, with `result_frames`
  naming the frame it was made from. In lossless runs they are an ordinary last step.
* Every result keeps its frame's capture timestamp and per-stage timings; a stage that
  raises is logged, counted and yields None for that frame, and the pipeline goes on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Sequence

import numpy as np

from engine.frame import Frame
from engine.frame_result import FrameResult, PipelineStats
from engine.slots import LatestSlot
from engine.stage_protocol import Stage, non_finite_fields

log = logging.getLogger(__name__)

Consumer = Callable[[FrameResult], None]
STOP_TIMEOUT_S = 1.0
POLL_S = 0.05  # how often a waiting thread looks at the stop flag
BACKGROUND_DEFAULT = ("volume",)

__all__ = ["BACKGROUND_DEFAULT", "Consumer", "FrameResult", "Pipeline", "PipelineStats", "plan_steps"]


def plan_steps(stages: Sequence[Stage]) -> list[list[Stage]]:
    """Group `stages` (in pipeline order) into steps: each stage goes into the step after
    the last one holding something it `requires`. A stage without a `requires` attribute
    reads every earlier stage, so it gets a step of its own after them."""
    level: dict[str, int] = {}
    steps: list[list[Stage]] = []
    for i, stage in enumerate(stages):
        requires = getattr(stage, "requires", None)
        deps = [s.name for s in stages[:i]] if requires is None else [r for r in requires if r in level]
        n = 1 + max((level[d] for d in deps), default=-1)
        if requires is None:
            n = max(n, len(steps))  # after every earlier step, not beside one
        level[stage.name] = n
        while len(steps) <= n:
            steps.append([])
        steps[n].append(stage)
    return steps


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


class _StageMeters:
    """Per-stage timings, latencies, result rate and error count (one writer per stage)."""

    def __init__(self, window: int) -> None:
        self.ms: deque[float] = deque(maxlen=window)
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.rate = _RateMeter()
        self.errors = 0
        self.count = 0  # results so far (failed ones included)


class Pipeline:
    """Runs `stages` over frames from `source`, overlapped on one thread per step.

    source: an object with `read() -> Frame | None` (None = ended) and `close()`.
    lossless: every frame through every stage, in order (offline runs over a file); live
        sources use latest-wins between all threads.
    owns_stages: close the stages when the pipeline stops (False when the caller keeps its
        loaded models for the next source, as the GUI does).
    background: names of stages that, in live runs, run at their own rate on the newest
        published frame instead of holding every frame back.
    """

    def __init__(self, source: Any, stages: Sequence[Stage], *, lossless: bool = False,
                 owns_stages: bool = True, window: int = 100,
                 background: Collection[str] = BACKGROUND_DEFAULT) -> None:
        self.source = source
        self.stages = list(stages)
        self.lossless = lossless
        per_frame = [s for s in self.stages if lossless or s.name not in background]
        self._background = [s for s in self.stages if s not in per_frame]
        self._steps = plan_steps(per_frame) or [[]]
        self._slots: list[LatestSlot] = [LatestSlot(block=lossless) for _ in self._steps]
        self._bg_slot: LatestSlot[FrameResult] = LatestSlot(block=False)
        # Consumers (file writers, outputs, the GUI's notification) run on their own thread,
        # so their cost overlaps the stages instead of adding to the last step's.
        self._out_slot: LatestSlot[FrameResult] = LatestSlot(block=lossless)
        self._pools = [ThreadPoolExecutor(len(step) - 1, thread_name_prefix="holocap-step")
                       if len(step) > 1 else None for step in self._steps]
        self._consumers: list[Consumer] = []
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._latest: FrameResult | None = None
        self._bg_latest: FrameResult | None = None  # the background stages' newest results
        self._threads: list[threading.Thread] = []
        self._alive_workers = 0
        self._meters = {s.name: _StageMeters(window) for s in self.stages}
        self._latency_ms: deque[float] = deque(maxlen=window)
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
        """The newest published FrameResult (for views that pull on their own timer)."""
        with self._lock:
            return self._latest

    @property
    def steps(self) -> list[list[str]]:
        """Stage names per step, then the background stages as a last entry (if any)."""
        names = [[s.name for s in step] for step in self._steps if step]
        return names + ([[s.name for s in self._background]] if self._background else [])

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            raise RuntimeError("pipeline already started")
        self._threads = [threading.Thread(target=self._capture_loop, name="holocap-capture", daemon=True)]
        for i in range(len(self._steps)):
            self._threads.append(threading.Thread(target=self._worker, args=(self._step_loop, i),
                                                  name=f"holocap-step{i}", daemon=True))
        self._threads.append(threading.Thread(target=self._worker, args=(self._publish_loop,),
                                              name="holocap-publish", daemon=True))
        if self._background:
            self._threads.append(threading.Thread(target=self._worker, args=(self._background_loop,),
                                                  name="holocap-background", daemon=True))
        self._alive_workers = len(self._threads) - 1
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Stop every thread; returns True when they ended within `timeout` seconds.

        A stage in the middle of a long process() cannot be interrupted: then its worker (a
        daemon) finishes that frame on its own, and the last worker out closes the stages.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        for slot in (*self._slots, self._bg_slot, self._out_slot):
            slot.close()
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
        """Wait for every thread to end (after stop()): a stage finishing its frame in
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
        def med(values: deque[float]) -> float:
            return float(np.median(values)) if values else 0.0

        stage_dropped = {}
        for slot, step in zip(self._slots, self._steps):
            for stage in step:
                stage_dropped[stage.name] = slot.dropped
        for stage in self._background:
            stage_dropped[stage.name] = self._bg_slot.dropped
        return PipelineStats(
            frames_read=self.frames_read,
            frames_processed=self.frames_processed,
            frames_dropped=sum(slot.dropped for slot in self._slots),
            capture_fps=self._capture_rate.rate(),
            process_fps=self._process_rate.rate(),
            stage_ms={k: med(m.ms) for k, m in self._meters.items()},
            stage_errors={k: m.errors for k, m in self._meters.items()},
            latency_ms=med(self._latency_ms),
            running=self.running,
            source_error=self.source_error,
            stage_fps={k: m.rate.rate() for k, m in self._meters.items()},
            stage_dropped=stage_dropped,
            stage_latency_ms={k: med(m.latency_ms) for k, m in self._meters.items()},
            stage_results={k: m.count for k, m in self._meters.items()},
            background=tuple(s.name for s in self._background),
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
                if not self._put(self._slots[0], FrameResult(frame=frame)):
                    return
        except Exception as exc:  # a broken source must not kill the app: report it
            self.source_error = f"{type(exc).__name__}: {exc}"
            log.exception("source failed")
        finally:
            self._slots[0].close()  # lets the workers drain the last frames and end

    def _put(self, slot: LatestSlot, item: Any) -> bool:
        """Hand `item` on; a lossless slot waits (watching the stop flag). False = stopped."""
        while not slot.put(item, timeout=POLL_S):
            if self._stop.is_set() or slot.closed:
                return False
        return True

    def _worker(self, loop: Callable[..., None], *args: Any) -> None:
        try:
            loop(*args)
        except Exception:  # a bug in the scheduler itself: say so, end this thread cleanly
            log.exception("pipeline worker failed")
        finally:
            with self._lock:
                self._alive_workers -= 1
                last = self._alive_workers == 0
            if last:
                self._ended.set()
                if self._stop.is_set():
                    self._close_stages()

    def _take(self, slot: LatestSlot) -> Any | None:
        """The next item of `slot`, or None once it is closed and empty (or on stop)."""
        while True:
            item = slot.get(timeout=POLL_S)
            if item is not None:
                return item
            if self._stop.is_set() or (slot.closed and slot.peek() is None):
                return None

    def _step_loop(self, i: int) -> None:
        last = i == len(self._steps) - 1
        out = None if last else self._slots[i + 1]
        try:
            while (fr := self._take(self._slots[i])) is not None:
                self._run_step(i, fr)
                if not last:
                    if not self._put(out, fr):
                        break
                    continue
                self._finish(fr)
                if self._stop.is_set():
                    break
        finally:
            for slot in (self._bg_slot, self._out_slot) if last else (out,):
                slot.close()
            pool = self._pools[i]
            if pool is not None:
                pool.shutdown(wait=False)

    def _background_loop(self) -> None:
        while (fr := self._take(self._bg_slot)) is not None:
            done = FrameResult(frame=fr.frame)
            ctx = dict(fr.results)
            for stage in self._background:
                self._run_stage(stage, done, ctx)
                ctx[stage.name] = done.results[stage.name]
            with self._lock:
                self._bg_latest = done

    def _run_step(self, i: int, fr: FrameResult) -> None:
        """Run step i's stages on `fr`: one on this thread, the others on the step's pool,
        each reading the results of earlier steps; results go in in stage order."""
        step, pool = self._steps[i], self._pools[i]
        ctx = dict(fr.results)
        if pool is None:
            for stage in step:
                self._run_stage(stage, fr, ctx)
            return
        parts = [FrameResult(frame=fr.frame) for _ in step]
        futures = [pool.submit(self._run_stage, stage, part, ctx) for stage, part in zip(step[1:], parts[1:])]
        self._run_stage(step[0], parts[0], ctx)
        for future in futures:
            future.result()  # _run_stage never raises: stage errors are recorded in the part
        for part in parts:
            fr.results.update(part.results)
            fr.timings_ms.update(part.timings_ms)
            fr.errors.update(part.errors)

    def _run_stage(self, stage: Stage, fr: FrameResult, ctx: dict[str, Any]) -> None:
        meters = self._meters[stage.name]
        t0 = time.perf_counter()
        try:
            result = stage.process(fr.frame, ctx)
            bad = non_finite_fields(result) if result is not None else []
            if bad:
                raise FloatingPointError(f"non-finite values in {', '.join(bad)}; result skipped")
            fr.results[stage.name] = result
        except Exception as exc:
            meters.errors += 1
            fr.results[stage.name] = None
            fr.errors[stage.name] = f"{type(exc).__name__}: {exc}"
            if meters.errors == 1 or meters.errors % 100 == 0:  # the first, then every 100th
                # A traceback helps with a bug, not with a model's NaN output.
                log.error("stage %s failed on frame %d (%d so far): %s", stage.name, fr.frame.index,
                          meters.errors, exc, exc_info=meters.errors == 1 and not isinstance(exc, FloatingPointError))
        ms = (time.perf_counter() - t0) * 1000.0
        fr.timings_ms[stage.name] = ms
        meters.ms.append(ms)
        now = time.monotonic()
        meters.latency_ms.append((now - fr.frame.t_capture) * 1000.0)
        meters.rate.tick(now)
        meters.count += 1

    def _finish(self, fr: FrameResult) -> None:
        """The per-frame stages are done: attach the background's newest results, publish,
        and offer the frame to the background worker."""
        fr.t_done = time.monotonic()
        self._latency_ms.append((fr.t_done - fr.frame.t_capture) * 1000.0)
        self.frames_processed += 1
        self._process_rate.tick(fr.t_done)
        if self._background:
            # The background sees this frame's own results, not the ones carried over.
            self._bg_slot.put(FrameResult(frame=fr.frame, results=dict(fr.results)))
            with self._lock:
                bg = self._bg_latest
            if bg is not None:
                for name, value in bg.results.items():
                    fr.results[name] = value
                    fr.timings_ms[name] = bg.timings_ms[name]
                    if name in bg.errors:
                        fr.errors[name] = bg.errors[name]
                    fr.result_frames[name] = bg.frame.index
        with self._lock:
            self._latest = fr
        self._put(self._out_slot, fr)

    def _publish_loop(self) -> None:
        while (fr := self._take(self._out_slot)) is not None:
            self._publish(fr)

    def _publish(self, result: FrameResult) -> None:
        with self._lock:
            consumers = list(self._consumers)
        for consumer in consumers:
            try:
                consumer(result)
            except Exception:
                log.exception("result consumer %r failed", consumer)

    def process_frame(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame on the calling thread (tools, tests)."""
        fr = FrameResult(frame=frame)
        for stage in self.stages:
            self._run_stage(stage, fr, dict(fr.results))
        fr.t_done = time.monotonic()
        return fr

    def _close_stages(self) -> None:
        with self._lock:
            if self._stages_closed:
                return
            self._stages_closed = True
        for pool in self._pools:
            if pool is not None:
                pool.shutdown(wait=True)
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
