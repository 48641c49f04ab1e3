"""The synthetic source is deterministic and honours size, count, loop and providers."""
from __future__ import annotations

import numpy as np
import pytest

from engine.sources.errors import SourceError
from engine.sources.synthetic import SyntheticSource, pattern_frame, read_pattern_index


def _images(source: SyntheticSource, n: int) -> list[np.ndarray]:
    source.open()
    return [source.read().image for _ in range(n)]


def test_deterministic_and_moving() -> None:
    a = _images(SyntheticSource(160, 120, 30), 5)
    b = _images(SyntheticSource(160, 120, 30), 5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert all(not np.array_equal(a[i], a[i + 1]) for i in range(4))
    assert a[0].shape == (120, 160, 3) and a[0].dtype == np.uint8
    assert [read_pattern_index(img) for img in a] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(a[3], pattern_frame(3, 160, 120))


def test_frame_count_end_and_loop() -> None:
    source = SyntheticSource(32, 24, 10, frames=3)
    source.open()
    frames = [source.read() for _ in range(4)]
    assert [f.index for f in frames[:3]] == [0, 1, 2] and frames[3] is None
    looping = SyntheticSource(160, 24, 10, frames=3, loop=True)
    assert [read_pattern_index(img) for img in _images(looping, 7)] == [0, 1, 2, 0, 1, 2, 0]


def test_provider_frames_are_converted() -> None:
    gray = [np.full((8, 8), v, np.uint8) for v in (5, 6)]
    source = SyntheticSource(8, 8, 10, provider=lambda i: gray[i] if i < len(gray) else None)
    source.open()
    first = source.read()
    assert first.image.shape == (8, 8, 3) and int(first.image[0, 0, 2]) == 5
    assert source.read() is not None and source.read() is None


def test_source_id_and_validation() -> None:
    assert SyntheticSource(64, 48, 15).source_id == "synthetic:64x48@15"
    with pytest.raises(SourceError):
        SyntheticSource(0, 48, 15)
    with pytest.raises(SourceError):
        SyntheticSource(64, 48, 0)


def test_from_images_plays_a_sequence() -> None:
    images = [np.full((6, 5, 3), v, np.uint8) for v in (1, 2, 3)]
    source = SyntheticSource.from_images(images, fps=12, loop=True)
    source.open()
    assert [int(source.read().image[0, 0, 0]) for _ in range(5)] == [1, 2, 3, 1, 2]
    assert source.source_id == "synthetic:5x6@12"
    with pytest.raises(SourceError):
        SyntheticSource.from_images([])
