"""The headless mp4 writer and the atomic screenshot."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from engine.outputs.screenshot import save_screenshot, screenshot_path
from engine.outputs.video_writer import VideoFileOutput, VideoWriter, VideoWriterError, even_size
from tests.engine.outputs.synthetic import decode_index, index_image


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    fps = cap.get(cv2.CAP_PROP_FPS)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    cap.release()
    return frames, fps, fourcc


def test_writes_every_frame_as_mp4v_padded_to_even(tmp_path):
    path = tmp_path / "out" / "overlay.mp4"
    with VideoWriter(path, fps=25.0) as writer:
        for i in range(20):
            writer.write(index_image(i, 161, 121))
    assert writer.size == (162, 122) and writer.frames_written == 20
    frames, fps, fourcc = _read_all(path)
    # FFmpeg names its MPEG-4 part 2 decoder FMP4 when reading the mp4v track back.
    assert len(frames) == 20 and fps == pytest.approx(25.0) and fourcc in ("mp4v", "fmp4")
    assert frames[0].shape == (122, 162, 3)
    assert [decode_index(f[:121, :161]) for f in frames] == list(range(20))
    # The padding is black; the content is close to what was written (lossy MPEG-4).
    assert frames[5][121:].max() < 40 and frames[5][:, 161:].max() < 40
    assert np.abs(frames[5][:121, :161].astype(int) - index_image(5, 161, 121)).mean() < 6


def test_other_sizes_are_letterboxed_onto_the_first_frames_canvas(tmp_path):
    path = tmp_path / "a.mp4"
    with VideoWriter(path) as writer:
        writer.write(index_image(0, 64, 48))
        writer.write(np.full((100, 66, 3), 200, np.uint8))  # taller: black bars left and right
        writer.write(index_image(2, 64, 48))
    assert writer.frames_letterboxed == 1
    frames = _read_all(path)[0]
    assert len(frames) == 3 and all(f.shape == (48, 64, 3) for f in frames)
    bright = frames[1].mean(axis=(0, 2))
    assert bright[:10].max() < 40 and bright[28:36].min() > 150  # centred, aspect kept


def test_huge_first_frame_is_scaled_to_max_side(tmp_path):
    path = tmp_path / "big.mp4"
    with VideoWriter(path, max_side=320) as writer:
        writer.write(np.full((1500, 2001, 3), 90, np.uint8))
    assert writer.size == (320, 240)
    cap = cv2.VideoCapture(str(path))
    ok, image = cap.read()
    cap.release()
    assert ok and image.shape == (240, 320, 3) and abs(int(image.mean()) - 90) < 10


def test_unwritable_target_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises((VideoWriterError, OSError)):
        VideoWriter(blocker / "x.mp4").write(index_image(0))  # parent is a file
    with pytest.raises(VideoWriterError, match="cannot write"):
        VideoWriter(tmp_path / "x.unknownext").write(index_image(0))


def test_even_size():
    assert even_size(161, 121) == (162, 122) and even_size(1280, 720) == (1280, 720)


def test_video_file_output_runs_on_its_thread(tmp_path):
    out = VideoFileOutput(tmp_path / "live.mp4", fps=30.0)
    with out:
        for i in range(10):
            out.send(index_image(i), i, i / 30)
            deadline = time.monotonic() + 5
            while out.stats.delivered <= i and time.monotonic() < deadline:
                time.sleep(0.005)
    frames, _, _ = _read_all(tmp_path / "live.mp4")
    assert [decode_index(f) for f in frames] == list(range(10))


def test_screenshot_is_an_exact_png_written_atomically(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = screenshot_path(tmp_path / "shots")
    assert path.suffix == ".png" and path.name.startswith("holocap_")
    save_screenshot(image, path)
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), image)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    path.write_bytes(b"")
    assert screenshot_path(tmp_path / "shots") != path  # never reuses a taken name
