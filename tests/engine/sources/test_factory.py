"""open_source: every spec form, and a one-line SourceError for every kind of bad input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources.camera import CameraSource
from engine.sources.errors import SourceError
from engine.sources.factory import open_source, parse_spec
from engine.sources.images import ImageSource
from engine.sources.synthetic import SyntheticSource
from engine.sources.video import VideoSource


def test_parse_spec_forms(tmp_path: Path) -> None:
    assert parse_spec("0").kind == "camera" and parse_spec("0").camera == 0
    assert parse_spec("camera:2").camera == 2
    assert parse_spec("camera:Logitech C920").camera == "Logitech C920"
    spec = parse_spec("synthetic:320x240@15")
    assert (spec.kind, spec.width, spec.height, spec.fps) == ("synthetic", 320, 240, 15.0)
    assert parse_spec("synthetic").width == 640
    (tmp_path / "a.MP4").write_bytes(b"x")
    (tmp_path / "b.PNG").write_bytes(b"x")
    assert parse_spec(str(tmp_path / "a.MP4")).kind == "video"
    assert parse_spec(str(tmp_path / "b.PNG")).kind == "images"
    assert parse_spec(str(tmp_path)).kind == "images"


@pytest.mark.parametrize("spec, pattern", [
    ("", "empty source"),
    ("camera:", "needs an index or a name"),
    ("camera:-1", "0 or more"),
    ("synthetic:abc", "synthetic source must look like"),
    ("/definitely/not/here.mp4", "no such file or folder"),
])
def test_bad_specs(spec: str, pattern: str) -> None:
    with pytest.raises(SourceError, match=pattern) as info:
        open_source(spec)
    assert "\n" not in str(info.value)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(SourceError, match=r"unsupported file type '\.txt'"):
        open_source(str(path))


def test_zero_length_image(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(SourceError, match="empty"):
        open_source(str(path))


def test_opens_each_kind(tmp_path: Path) -> None:
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.zeros((10, 12, 3), np.uint8))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (16, 16))
    for _ in range(2):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    for spec, kind in ((str(image), ImageSource), (str(tmp_path), ImageSource), (str(video), VideoSource),
                       ("synthetic:32x16@5", SyntheticSource)):
        source = open_source(spec, realtime=False)
        assert isinstance(source, kind)
        frame = source.read()
        assert frame is not None and frame.image.dtype == np.uint8 and frame.image.shape[2] == 3
        source.close()


def test_camera_that_does_not_exist(monkeypatch) -> None:
    # Whatever this machine has, index 999 is not among its cameras.
    with pytest.raises(SourceError, match="camera 999") as info:
        open_source("camera:999")
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match="no camera named|ambiguous"):
        open_source("camera:no such camera model xyz")


def test_bad_camera_mode() -> None:
    with pytest.raises(SourceError, match="camera mode must look like"):
        open_source("camera:0", camera_mode="big")
    assert isinstance(CameraSource(0), CameraSource)
