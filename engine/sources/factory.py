"""`open_source(spec)`: turn what the user typed (a path, `camera:N`, `camera:NAME`, a bare
index, `synthetic[:WxH[@fps]]`) into an opened Source, validating it up front so the CLI can
print one line and exit non-zero, and the GUI can show a dialog."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.sources.base import Source
from engine.sources.camera import CameraSource
from engine.sources.devices import CameraMode, parse_mode
from engine.sources.errors import SourceError
from engine.sources.images import IMAGE_EXTENSIONS, ImageSource
from engine.sources.synthetic import SyntheticSource
from engine.sources.video import VIDEO_EXTENSIONS, VideoSource

_SYNTH_RE = re.compile(r"^synthetic(?::(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?)?$")
STILL_FPS = 30.0  # rate at which a looping still image / folder is delivered in realtime mode


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec. kind: "camera" | "video" | "images" | "synthetic"."""

    kind: str
    camera: int | str | None = None
    path: Path | None = None
    width: int = 640
    height: int = 480
    fps: float = 30.0


def parse_spec(spec: str) -> SourceSpec:
    """Classify `spec` without touching devices; checks paths exist. Raises SourceError."""
    text = spec.strip()
    if not text:
        raise SourceError("empty source: give a video, image or folder path, camera:N or synthetic")
    if text.isdigit():
        return SourceSpec("camera", camera=int(text))
    low = text.lower()
    if low.startswith("camera:"):
        target = text[len("camera:"):].strip()
        if not target:
            raise SourceError("camera: needs an index or a name, e.g. camera:0")
        if re.fullmatch(r"-?\d+", target):
            if int(target) < 0:
                raise SourceError(f"camera index must be 0 or more, got {target}")
            return SourceSpec("camera", camera=int(target))
        return SourceSpec("camera", camera=target)
    if low.startswith("synthetic"):
        match = _SYNTH_RE.match(low)
        if not match:
            raise SourceError(f"synthetic source must look like synthetic, synthetic:640x480 or "
                              f"synthetic:640x480@30, got '{text}'")
        w, h, fps = match.groups()
        return SourceSpec("synthetic", width=int(w or 640), height=int(h or 480), fps=float(fps or 30.0))
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.is_dir():
        return SourceSpec("images", path=path)
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return SourceSpec("video", path=path)
    if ext in IMAGE_EXTENSIONS:
        return SourceSpec("images", path=path)
    raise SourceError(f"unsupported file type '{ext or 'no extension'}' (expected a video such as .mp4, an image "
                      f"such as .png or .jpg, or a folder of images): {path}")


def make_source(spec: SourceSpec, *, loop: bool = False, camera_mode: CameraMode | str | None = None,
                realtime: bool = True, pace_fps: float | None = None) -> Source:
    """Construct (not open) the source for a parsed spec."""
    if spec.kind == "camera":
        if isinstance(camera_mode, str):
            try:
                camera_mode = parse_mode(camera_mode)
            except ValueError as exc:
                raise SourceError(str(exc)) from exc
        assert spec.camera is not None
        return CameraSource(spec.camera, mode=camera_mode)
    if spec.kind == "synthetic":
        return SyntheticSource(spec.width, spec.height, spec.fps, loop=loop, realtime=realtime)
    assert spec.path is not None
    if spec.kind == "video":
        return VideoSource(spec.path, loop=loop, realtime=realtime, pace_fps=pace_fps)
    return ImageSource(spec.path, loop=loop, fps=STILL_FPS, realtime=realtime)


def open_source(spec: str, *, loop: bool = False, camera_mode: CameraMode | str | None = None,
                realtime: bool = True, pace_fps: float | None = None) -> Source:
    """Parse `spec`, build the source and open it; returns an opened Source.

    spec: a video file, an image file, a folder of images, `camera:N`, `camera:NAME`, a bare
      camera index ("0"), or `synthetic[:WxH[@fps]]`.
    loop: files and synthetic sources restart at the end instead of ending.
    camera_mode: requested camera mode (CameraMode or "1280x720@30[:MJPG]"); default 720p30 MJPG.
    realtime: pace files to their frame rate (GUI); False delivers as fast as read (headless).
    pace_fps: play video files at this rate instead of their own (benchmarks).
    Raises SourceError with a one-line message for every kind of bad input.
    """
    source = make_source(parse_spec(spec), loop=loop, camera_mode=camera_mode, realtime=realtime,
                         pace_fps=pace_fps)
    source.open()
    return source
