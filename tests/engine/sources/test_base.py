"""Frame-rate meter, pacing, and the Source protocol across every source kind."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources.base import FpsMeter, Pacer, Source
from engine.sources.camera import CameraSource
from engine.sources.images import ImageSource
from engine.sources.synthetic import SyntheticSource
from engine.sources.video import VideoSource


def test_fps_meter_moving_window() -> None:
    meter = FpsMeter(window=5)
    assert meter.fps == 0.0
    for i in range(20):
        meter.tick(i * 0.1)  # 10 fps ...
    assert meter.fps == pytest.approx(10.0)
    for i in range(5):
        meter.tick(2.0 + i * 0.05)  # ... then 20 fps: only the last 5 stamps count
    assert meter.fps == pytest.approx(20.0)


def test_pacer_schedules_frames_on_the_file_clock() -> None:
    now = [100.0]
    waits: list[float] = []

    def fake_wait(seconds: float) -> bool:
        waits.append(seconds)
        now[0] += seconds
        return False

    pacer = Pacer(25.0, clock=lambda: now[0])
    for _ in range(4):
        pacer.wait(fake_wait)
        now[0] += 0.01  # 10 ms of work per frame
    assert waits == pytest.approx([0.03, 0.03, 0.03])  # first frame immediately, then every 40 ms
    now[0] += 5.0  # the consumer stalled: no burst to catch up, the clock restarts
    pacer.wait(fake_wait)
    pacer.wait(fake_wait)
    assert waits[3:] == pytest.approx([0.04])


def test_every_source_satisfies_the_protocol(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (16, 16))
    writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    sources = [ImageSource(image), VideoSource(video), SyntheticSource(8, 8), CameraSource(0)]
    for source in sources:
        assert isinstance(source, Source)
        if not isinstance(source, CameraSource):
            source.open()
            source.read()
        json.dumps(source.info())  # JSON-able for logs and the HUD
        source.close()
