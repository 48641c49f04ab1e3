"""A headless run whose outputs fail: each failure is isolated, named in the summary, and
the files of the others are complete. Frames of changing size and endless runs in segments."""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import pytest

from engine.headless import HeadlessOptions, run_headless
from engine.outputs.group import OutputGroup
from engine.signals import StopRequested, exit_status, stop_on_signals
from engine.sources.synthetic import SyntheticSource
from engine.sources.video import count_decodable_frames


@dataclass(frozen=True)
class Echo:
    index: int

    def to_json(self) -> dict:
        return {"index": self.index}


class EchoStage:
    name = "echo"

    def process(self, frame, ctx):
        return Echo(frame.index)

    def reset(self) -> None: ...

    def close(self) -> None: ...


class BrokenOutput:
    name = "broken"

    def start(self) -> None: ...

    def send(self, image, frame_index, t) -> None:
        raise RuntimeError("device unplugged")

    def close(self) -> None: ...


class CountingOutput:
    name = "counting"

    def __init__(self) -> None:
        self.frames: list[int] = []

    def start(self) -> None: ...

    def send(self, image, frame_index, t) -> None:
        self.frames.append(frame_index)

    def close(self) -> None: ...


frames_in = count_decodable_frames


def test_a_failing_output_is_disabled_alone_and_reported(tmp_path):
    counting = CountingOutput()
    source = SyntheticSource(96, 64, frames=10)
    source.open()
    summary = run_headless(source, [EchoStage()], HeadlessOptions(
        out_dir=tmp_path, progress=False, outputs=OutputGroup([BrokenOutput(), counting])))
    assert summary["frames_processed"] == 10
    assert "device unplugged" in summary["output_errors"]["broken"]
    assert counting.frames == list(range(10))
    assert frames_in(tmp_path / "overlay.mp4") == 10
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10


def test_an_unwritable_video_leaves_the_results_complete(tmp_path):
    (tmp_path / "overlay.mp4").mkdir()  # the video cannot be created where a folder is
    source = SyntheticSource(96, 64, frames=10)
    source.open()
    summary = run_headless(source, [EchoStage()], HeadlessOptions(out_dir=tmp_path, progress=False))
    assert "overlay.mp4" in summary["output_errors"]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10
    assert "overlay.mp4" not in summary["files"]


def test_frames_of_changing_size_all_reach_the_video(tmp_path):
    sizes = [(96, 64), (64, 96), (200, 50), (97, 63), (96, 64)]
    images = [np.full((h, w, 3), 40 * i, np.uint8) for i, (w, h) in enumerate(sizes)]

    source = SyntheticSource(96, 64, frames=len(images), provider=lambda i: images[i])
    source.open()
    summary = run_headless(source, [EchoStage()], HeadlessOptions(out_dir=tmp_path, progress=False))
    assert summary["output_errors"] == {}
    assert frames_in(tmp_path / "overlay.mp4") == len(images)


def test_an_endless_run_is_cut_into_playable_segments(tmp_path):
    source = SyntheticSource(96, 64, fps=40.0, realtime=True)  # endless, paced
    source.open()
    summary = run_headless(source, [EchoStage()], HeadlessOptions(
        out_dir=tmp_path, progress=False, max_frames=80, segment_minutes=0.01, disk_budget_gb=1.0))
    overlays = sorted(tmp_path.glob("overlay_*.mp4"))
    results = sorted(tmp_path.glob("results_*.jsonl"))
    assert len(overlays) >= 2 and len(results) == len(overlays)
    assert not list(tmp_path.glob("*.partial*"))
    assert sum(frames_in(p) for p in overlays) == summary["frames_processed"] == 80
    assert sum(len(p.read_text().splitlines()) for p in results) == 80
    assert summary["segments"] == len(overlays)
    assert set(summary["files"]) >= {p.name for p in overlays} | {"summary.json"}


def test_stop_signals_raise_once_then_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StopRequested) as caught:
        with stop_on_signals() as state:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)  # the handler runs between bytecodes: this never finishes
    assert caught.value.signum == signal.SIGTERM and state.signum == signal.SIGTERM
    assert isinstance(caught.value, KeyboardInterrupt)  # every Ctrl-C clean-up path runs
    assert exit_status(signal.SIGTERM) == 143
    assert signal.getsignal(signal.SIGTERM) == before
    with stop_on_signals(raise_in_main=False) as state:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.05)
    assert state.requested and state.signum == signal.SIGHUP
