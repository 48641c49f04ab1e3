"""Pipeline behaviour: drop policy, failure isolation, shutdown time, lossless runs."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from engine.frame import Frame
from engine.pipeline import Pipeline
from engine.slots import LatestSlot


class CountingSource:
    """Produces `n` frames (or endless with n=None) at `fps` (unpaced with fps=None)."""

    def __init__(self, n: int | None = None, fps: float | None = None) -> None:
        self.n, self.fps, self.index, self.closed = n, fps, 0, False

    def read(self) -> Frame | None:
        if self.n is not None and self.index >= self.n:
            return None
        if self.fps:
            time.sleep(1.0 / self.fps)
        frame = Frame(np.zeros((8, 8, 3), np.uint8), self.index, time.monotonic(), "test")
        self.index += 1
        return frame

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class Echo:
    index: int

    def to_json(self) -> dict:
        return {"index": self.index}


class SleepStage:
    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.closed = name, seconds, False

    def process(self, frame, ctx):
        time.sleep(self.seconds)
        return Echo(frame.index)

    def reset(self) -> None: ...

    def close(self) -> None:
        self.closed = True


class FailingStage:
    """Raises on every odd frame."""

    name = "flaky"

    def process(self, frame, ctx):
        if frame.index % 2:
            raise ValueError("odd frame")
        return Echo(frame.index)

    def reset(self) -> None: ...

    def close(self) -> None: ...


class ReadsEarlierStage:
    name = "later"

    def __init__(self) -> None:
        self.seen: list[object] = []

    def process(self, frame, ctx):
        self.seen.append(ctx.get("flaky"))
        return Echo(frame.index)

    def reset(self) -> None: ...

    def close(self) -> None: ...


def test_latest_slot_replaces_and_counts():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(0) == 4
    assert slot.dropped == 4
    assert slot.get(0.01) is None


def test_slow_stage_drops_frames_without_growing_a_queue():
    source = CountingSource(fps=200)
    slow = SleepStage("slow", 0.05)
    pipe = Pipeline(source, [slow])
    seen: list[int] = []
    pipe.add_consumer(lambda fr: seen.append(fr.frame.index))
    pipe.start()
    time.sleep(1.0)
    pipe.close()
    stats = pipe.stats()
    assert stats.frames_dropped > 0
    # Every frame read was either processed, dropped, or is the one in flight.
    assert stats.frames_read - stats.frames_processed - stats.frames_dropped in (0, 1, 2)
    # The worker always took the newest frame: indices jump, never repeat or go back.
    assert all(b > a for a, b in zip(seen, seen[1:]))
    assert max(np.diff(seen)) > 1
    # Latency stays bounded by ~one stage time, not by a growing backlog.
    assert stats.latency_ms < 200


def test_failing_stage_is_isolated_and_counted():
    later = ReadsEarlierStage()
    pipe = Pipeline(CountingSource(n=10), [FailingStage(), later], lossless=True)
    results = []
    pipe.add_consumer(results.append)
    pipe.start()
    assert pipe.wait(5)
    pipe.close()
    assert len(results) == 10
    failed = [r for r in results if "flaky" in r.errors]
    assert len(failed) == 5 and all(r.results["flaky"] is None for r in failed)
    assert all("later" in r.results and r.results["later"] is not None for r in results)
    assert pipe.stats().stage_errors["flaky"] == 5
    assert sum(x is None for x in later.seen) == 5  # later stages see the failure as None


def test_consumer_exception_does_not_stop_pipeline():
    pipe = Pipeline(CountingSource(n=5), [SleepStage("s", 0)], lossless=True)
    pipe.add_consumer(lambda fr: 1 / 0)
    got = []
    pipe.add_consumer(got.append)
    pipe.start()
    assert pipe.wait(5)
    pipe.close()
    assert len(got) == 5


def test_lossless_processes_every_frame_in_order():
    pipe = Pipeline(CountingSource(n=50), [SleepStage("s", 0.002)], lossless=True)
    seen = []
    pipe.add_consumer(lambda fr: seen.append(fr.frame.index))
    pipe.start()
    assert pipe.wait(10)
    pipe.close()
    assert seen == list(range(50))
    assert pipe.stats().frames_dropped == 0


@pytest.mark.parametrize("stage_seconds", [0.0, 0.3])
def test_shutdown_completes_within_one_second(stage_seconds):
    source = CountingSource(fps=60)
    stage = SleepStage("s", stage_seconds)
    pipe = Pipeline(source, [stage])
    pipe.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    pipe.close()
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0
    assert not pipe.running
    assert stage.closed and source.closed


def test_frame_result_json_has_stage_keys_and_timings():
    pipe = Pipeline(CountingSource(n=1), [SleepStage("echo", 0)], lossless=True)
    fr = pipe.process_frame(CountingSource(n=1).read())
    data = fr.to_json()
    assert data["frame"] == 0 and data["echo"] == {"index": 0}
    assert set(data["timings_ms"]) == {"echo"}


@dataclass(frozen=True)
class Geometry:
    vertices: np.ndarray
    fit_rmse_px: float = float("nan")  # "not measured" is allowed

    def to_json(self) -> dict:
        return {"vertices": self.vertices, "fit_rmse_px": self.fit_rmse_px}


class DivergingStage:
    """Gives NaN vertices on every third frame, as a degenerate model file would."""

    name = "diverging"

    def process(self, frame, ctx):
        value = np.nan if frame.index % 3 == 0 else 1.0
        return Geometry(np.full((4, 3), value, np.float32))

    def reset(self) -> None: ...

    def close(self) -> None: ...


def test_non_finite_results_are_skipped_and_reported():
    import json

    from engine.stage_protocol import dumps_json, jsonable

    pipe = Pipeline(CountingSource(n=9), [DivergingStage()], lossless=True)
    results = []
    pipe.add_consumer(results.append)
    pipe.start()
    assert pipe.wait(5)
    pipe.close()
    bad = [r for r in results if r.frame.index % 3 == 0]
    assert all(r.results["diverging"] is None and "non-finite" in r.errors["diverging"] for r in bad)
    assert all(r.results["diverging"] is not None for r in results if r.frame.index % 3)
    assert pipe.stats().stage_errors["diverging"] == 3
    for r in results:  # valid JSON on every frame, the "not measured" NaN as null
        row = json.loads(dumps_json(jsonable(r.to_json())))
        assert row["diverging"] is None or row["diverging"]["fit_rmse_px"] is None
