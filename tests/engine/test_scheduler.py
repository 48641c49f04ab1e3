"""The overlapping scheduler: steps from dependencies, lossless order with overlap, a slow
background stage never holding the per-frame stages back, failures in any worker, shutdown."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from engine.pipeline import Pipeline, plan_steps
from tests.engine.test_pipeline import CountingSource


@dataclass(frozen=True)
class Seen:
    index: int
    ctx: tuple[str, ...]

    def to_json(self) -> dict:
        return {"index": self.index}


class FakeStage:
    """Sleeps `seconds`, records which thread ran it and what it saw in ctx; raises on the
    frames in `fail_on`."""

    def __init__(self, name: str, requires: tuple[str, ...], seconds: float = 0.0,
                 fail_on: frozenset[int] = frozenset()) -> None:
        self.name, self.requires, self.seconds, self.fail_on = name, requires, seconds, fail_on
        self.threads: set[str] = set()
        self.order: list[int] = []
        self.closed = False

    def process(self, frame, ctx):
        self.threads.add(threading.current_thread().name)
        self.order.append(frame.index)
        for name in self.requires:
            result = ctx.get(name)
            assert result is None or result.index == frame.index, "a stage saw another frame's result"
        time.sleep(self.seconds)
        if frame.index in self.fail_on:
            raise RuntimeError(f"{self.name} broke on {frame.index}")
        return Seen(frame.index, tuple(sorted(ctx)))

    def reset(self) -> None: ...

    def close(self) -> None:
        self.closed = True


def app_like(volume_seconds: float = 0.0, fit_seconds: float = 0.0, fail: str | None = None):
    fail_on = frozenset({3, 7})
    return [FakeStage("perception", (), 0.004, fail_on if fail == "perception" else frozenset()),
            FakeStage("face", ("perception",), fit_seconds, fail_on if fail == "face" else frozenset()),
            FakeStage("body", ("perception",), fit_seconds, fail_on if fail == "body" else frozenset()),
            FakeStage("volume", ("perception", "body"), volume_seconds,
                      fail_on if fail == "volume" else frozenset())]


def test_steps_follow_dependencies():
    names = [[s.name for s in step] for step in plan_steps(app_like())]
    assert names == [["perception"], ["face", "body"], ["volume"]]
    # Stages without `requires` read everything before them: one step each, in order.
    plain = [type(n, (), {"name": n})() for n in ("x", "y", "z")]
    assert [[s.name for s in step] for step in plan_steps(plain)] == [["x"], ["y"], ["z"]]
    # ...while a stage that needs only the first runs beside such a stage.
    mixed = [FakeStage("a", ()), type("B", (), {"name": "b"})(), FakeStage("c", ("a",))]
    assert [[s.name for s in step] for step in plan_steps(mixed)] == [["a"], ["b", "c"]]


def test_lossless_overlapped_run_is_complete_and_in_order():
    stages = app_like(volume_seconds=0.003, fit_seconds=0.003)
    pipe = Pipeline(CountingSource(n=60), stages, lossless=True)
    got = []
    pipe.add_consumer(got.append)
    t0 = time.monotonic()
    pipe.start()
    assert pipe.wait(20)
    pipe.close()
    assert [fr.frame.index for fr in got] == list(range(60))
    for stage in stages:
        assert stage.order == list(range(60)), stage.name
    for fr in got:  # every stage's result belongs to the frame it is published with
        assert all(r.index == fr.frame.index for r in fr.results.values())
        assert list(fr.results) == ["perception", "face", "body", "volume"]
        assert not fr.result_frames
    assert pipe.stats().frames_dropped == 0
    # face and body ran side by side, on different threads
    assert stages[1].threads != stages[2].threads or len(stages[1].threads | stages[2].threads) > 1
    # overlapped: ~60 x max(step) rather than 60 x sum(steps)
    assert time.monotonic() - t0 < 60 * (0.004 + 0.003 + 0.003) + 2.0


def test_slow_background_volume_does_not_slow_face_and_body():
    def rate(volume_seconds: float) -> tuple[float, int]:
        stages = app_like(volume_seconds=volume_seconds)
        pipe = Pipeline(CountingSource(fps=100), stages, lossless=False)
        got = []
        pipe.add_consumer(got.append)
        pipe.start()
        time.sleep(1.5)
        pipe.close()
        fits = [fr for fr in got if fr.results.get("face") is not None and fr.results.get("body") is not None]
        with_volume = [fr for fr in got if fr.results.get("volume") is not None]
        return len(fits) / 1.5, len(with_volume)

    fast_rate, _ = rate(0.0)
    slow_rate, with_volume = rate(0.4)  # a volume 40x slower than a frame
    assert slow_rate > 0.7 * fast_rate, (slow_rate, fast_rate)
    assert with_volume > 0  # its newest result rides on later frames


def test_background_result_names_its_own_frame():
    pipe = Pipeline(CountingSource(fps=100), app_like(volume_seconds=0.1), lossless=False)
    got = []
    pipe.add_consumer(got.append)
    pipe.start()
    time.sleep(1.0)
    pipe.close()
    carried = [fr for fr in got if fr.results.get("volume") is not None]
    assert carried
    for fr in carried:
        assert fr.result_frames["volume"] == fr.results["volume"].index < fr.frame.index
        assert fr.to_json()["result_frames"]["volume"] == fr.result_frames["volume"]


@pytest.mark.parametrize("failing", ["perception", "face", "body", "volume"])
@pytest.mark.parametrize("lossless", [True, False])
def test_a_stage_that_raises_in_any_worker_is_counted_and_skipped(failing, lossless):
    stages = app_like(fail=failing)
    source = CountingSource(n=12) if lossless else CountingSource(n=12, fps=50)
    pipe = Pipeline(source, stages, lossless=lossless)
    got = []
    pipe.add_consumer(got.append)
    pipe.start()
    assert pipe.wait(10)
    time.sleep(0.05)
    pipe.close()
    stats = pipe.stats()
    assert stats.frames_processed > 0 and got
    assert stats.stage_errors[failing] >= (2 if lossless else 1) or failing == "volume"
    if lossless:
        assert len(got) == 12
        failed = [fr.frame.index for fr in got if failing in fr.errors]
        assert failed == [3, 7]
        assert stats.stage_errors[failing] == 2
    for name in ("perception", "face", "body"):
        if name != failing:
            assert any(fr.results.get(name) is not None for fr in got)


def test_shutdown_within_one_second_with_every_worker_busy():
    stages = app_like(volume_seconds=0.3, fit_seconds=0.2)
    pipe = Pipeline(CountingSource(fps=60), stages, lossless=False)
    pipe.start()
    time.sleep(0.8)
    assert len(pipe.steps) == 3
    t0 = time.monotonic()
    pipe.close()
    assert time.monotonic() - t0 < 1.0
    assert not pipe.running
    assert all(stage.closed for stage in stages)


def test_shutdown_of_a_lossless_run_blocked_downstream():
    stages = app_like(volume_seconds=0.3)
    pipe = Pipeline(CountingSource(), stages, lossless=True)
    pipe.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    pipe.close()
    assert time.monotonic() - t0 < 1.0 and not pipe.running
