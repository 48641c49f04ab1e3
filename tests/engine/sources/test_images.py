"""Image sources: layout conversions (16-bit, alpha, grayscale), corrupt files, folder order."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources.convert import to_bgr8
from engine.sources.errors import SourceError
from engine.sources.images import ImageSource, decode_image, natural_key


def _bgr(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _read_all(source: ImageSource) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
        assert len(frames) < 100, "a non-looping image source must end"
    return frames


def _check_frame(image: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.flags["C_CONTIGUOUS"]


def test_16bit_png_scaled_by_1_over_257(tmp_path: Path, caplog) -> None:
    base = _bgr()
    deep = base.astype(np.uint16) * 257  # exact 8-bit values in 16 bits
    deep[0, 0] = (65535, 128, 0)  # 128/257 = 0.498 -> 0; 65535 -> 255
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), deep)
    with caplog.at_level(logging.INFO, logger="engine.sources.images"):
        source = ImageSource(path)
        source.open()
        frame = source.read()
    _check_frame(frame.image)
    expected = base.copy()
    expected[0, 0] = (255, 0, 0)
    np.testing.assert_array_equal(frame.image, expected)
    assert any("16-bit" in r.getMessage() for r in caplog.records)


def test_alpha_png_composited_over_black(tmp_path: Path, caplog) -> None:
    colour = _bgr(seed=1)
    alpha = np.zeros(colour.shape[:2], np.uint8)
    alpha[:, 10:] = 255
    alpha[:, 5:10] = 128
    path = tmp_path / "alpha.png"
    assert cv2.imwrite(str(path), np.dstack([colour, alpha]))
    with caplog.at_level(logging.INFO, logger="engine.sources.images"):
        image, notes = decode_image(path)
    _check_frame(image)
    assert notes == ["alpha composited over black"]
    np.testing.assert_array_equal(image[:, :5], 0)  # fully transparent -> black
    np.testing.assert_array_equal(image[:, 10:], colour[:, 10:])  # opaque -> unchanged
    half = (colour[:, 5:10].astype(np.int32) * 128 + 127) // 255
    np.testing.assert_array_equal(image[:, 5:10], half)


def test_grayscale_replicated(tmp_path: Path) -> None:
    gray = _bgr(seed=2)[:, :, 0].copy()
    for name in ("gray.png", "gray.pgm"):
        path = tmp_path / name
        assert cv2.imwrite(str(path), gray)
        image, notes = decode_image(path)
        _check_frame(image)
        assert notes == ["grayscale replicated to BGR"]
        for c in range(3):
            np.testing.assert_array_equal(image[:, :, c], gray)


def test_16bit_gray_with_alpha_and_float_conversions() -> None:
    ga = np.zeros((4, 4, 2), np.uint16)
    ga[..., 0] = 65535
    ga[..., 1] = 65535
    ga[0, 0, 1] = 0
    image, notes = to_bgr8(ga)
    assert notes == ["16-bit scaled to 8-bit", "grayscale with alpha composited over black"]
    assert image.shape == (4, 4, 3) and image[1, 1].tolist() == [255, 255, 255] and image[0, 0].tolist() == [0, 0, 0]
    image, notes = to_bgr8(np.full((2, 2, 3), 0.5, np.float32))
    assert image[0, 0].tolist() == [128, 128, 128] and notes == ["floating-point (0..1) scaled to 8-bit"]
    with pytest.raises(SourceError, match="unsupported pixel type"):
        to_bgr8(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(SourceError, match="channels"):
        to_bgr8(np.zeros((2, 2, 5), np.uint8))


def test_jpeg_decodes_unchanged_layout(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    assert cv2.imwrite(str(path), _bgr(seed=3))
    image, notes = decode_image(path)
    _check_frame(image)
    assert notes == [] and image.shape == (24, 32, 3)


@pytest.mark.parametrize("content, message", [
    (b"this is not an image at all", "cannot decode image"),
    (b"", "empty"),
])
def test_corrupt_image_file_raises(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    source = ImageSource(path)
    with pytest.raises(SourceError, match=message) as info:
        source.open()
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_png_raises(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", _bgr(64, 64, seed=4))
    path = tmp_path / "truncated.png"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(SourceError, match="cannot decode image"):
        ImageSource(path).open()


def test_unreadable_image_raises(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "secret.png"
    assert cv2.imwrite(str(path), _bgr())

    def denied(*_args, **_kwargs):
        # chmod 0 does not stop root (CI containers), so the OS refusal is simulated.
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "fromfile", denied)
    with pytest.raises(SourceError, match="cannot read image .*Permission denied"):
        ImageSource(path).open()


def test_folder_natural_order_and_skips_corrupt(tmp_path: Path, caplog) -> None:
    names = ["img10.png", "img2.png", "img1.png", "IMG3.jpg", "img20.png"]
    for i, name in enumerate(names):
        image = np.full((8, 8, 3), 10 * (i + 1), np.uint8)
        assert cv2.imwrite(str(tmp_path / name), image)
    (tmp_path / "img15.png").write_bytes(b"corrupt")  # skipped with a warning
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / ".hidden.png").write_bytes(b"ignored: hidden")
    with caplog.at_level(logging.WARNING, logger="engine.sources.images"):
        source = ImageSource(tmp_path)
        source.open()
        frames = _read_all(source)
    order = ["img1.png", "img2.png", "IMG3.jpg", "img10.png", "img20.png"]
    assert [int(f.image[0, 0, 0]) for f in frames] == [10 * (names.index(n) + 1) for n in order]
    assert [f.index for f in frames] == list(range(5))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "img15.png" in warnings[0]
    assert source.info()["skipped"] == 1


def test_folder_of_only_corrupt_images_raises(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"corrupt")
    (tmp_path / "b.jpg").write_bytes(b"also corrupt")
    with pytest.raises(SourceError, match="no decodable image"):
        ImageSource(tmp_path).open()


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match="folder has no images"):
        ImageSource(tmp_path).open()


def test_single_image_ends_or_loops(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    assert cv2.imwrite(str(path), _bgr())
    source = ImageSource(path)
    source.open()
    assert len(_read_all(source)) == 1
    looping = ImageSource(path, loop=True)
    looping.open()
    frames = [looping.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].image is not frames[1].image  # each frame owns its pixels
    np.testing.assert_array_equal(frames[2].image, _bgr())
    looping.close()
    assert looping.read() is None


def test_natural_key() -> None:
    names = ["a10.png", "a9.png", "b1.png", "a100.png", "A2.png"]
    assert sorted(names, key=lambda n: natural_key(Path(n))) == ["A2.png", "a9.png", "a10.png", "a100.png", "b1.png"]
