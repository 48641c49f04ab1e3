"""Video sources: end, loop, and every kind of bad file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources.errors import SourceError
from engine.sources.video import VideoSource

N_FRAMES = 12
LEVEL_STEP = 20  # frame i is a flat image of value LEVEL_STEP * i (MJPG keeps flat levels within a few units)


@pytest.fixture(scope="module")
def small_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "levels.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        writer.write(np.full((48, 64, 3), LEVEL_STEP * i, np.uint8))
    writer.release()
    return path


def _level(frame) -> int:
    return int(round(float(frame.image.mean()) / LEVEL_STEP))


def test_reads_every_frame_then_ends(small_video: Path) -> None:
    source = VideoSource(small_video)
    source.open()
    assert source.nominal_fps == pytest.approx(10.0)
    assert not source.is_live
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
        assert len(frames) <= N_FRAMES
    assert [_level(f) for f in frames] == list(range(N_FRAMES))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    first = frames[0]
    assert first.image.shape == (48, 64, 3) and first.image.dtype == np.uint8 and first.image.flags["C_CONTIGUOUS"]
    assert first.source_id == str(small_video)
    assert source.read() is None  # stays ended
    source.close()


def test_loop_rewinds(small_video: Path) -> None:
    source = VideoSource(small_video, loop=True)
    source.open()
    frames = [source.read() for _ in range(2 * N_FRAMES + 3)]
    assert [_level(f) for f in frames] == [i % N_FRAMES for i in range(2 * N_FRAMES + 3)]
    assert frames[-1].index == 2 * N_FRAMES + 2  # the running index does not restart
    # The filters' clock is the file's timeline, and it keeps going forward over the loops.
    assert [f.t_filter for f in frames] == pytest.approx([i / 10.0 for i in range(2 * N_FRAMES + 3)])
    assert source.info()["loops"] == 2
    source.close()
    assert source.read() is None


def test_real_footage_frame_count(shared_file) -> None:
    source = VideoSource(shared_file("media/talking_head.mp4"))
    source.open()
    count = 0
    while (frame := source.read()) is not None:
        count += 1
    assert count == 169 and frame is None
    assert source.nominal_fps == pytest.approx(25.0)
    source.close()


def _expect_error(path: Path, pattern: str) -> None:
    with pytest.raises(SourceError, match=pattern) as info:
        VideoSource(path).open()
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.mp4", "no such file")


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    _expect_error(path, "empty")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_error(path, "cannot open video")


def test_truncated_file_without_frames(small_video: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.avi"
    path.write_bytes(small_video.read_bytes()[:2048])  # headers only, no complete frame
    with pytest.raises(SourceError, match="cannot open video|no decodable frames"):
        VideoSource(path).open()


def test_unreadable_file(small_video: Path, monkeypatch) -> None:
    # chmod does not stop root (CI containers), so the permission check is what is simulated.
    monkeypatch.setattr("engine.sources.video.os.access", lambda *_a, **_k: False)
    _expect_error(small_video, "permission denied")


def test_close_from_another_thread_ends_paced_read(small_video: Path) -> None:
    import threading

    source = VideoSource(small_video, loop=True, realtime=True)
    source.open()
    assert source.read() is not None
    results: list = []
    reader = threading.Thread(target=lambda: results.extend(source.read() for _ in range(1000)))
    reader.start()
    source.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert results[-1] is None
