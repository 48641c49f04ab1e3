"""Camera source with fake devices: negotiated mode, reconnect with backoff after failures,
close() interrupting a backoff, name resolution; plus parsing helpers and list_cameras()."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources.camera import CameraSource, ReconnectPolicy, backoff_delays, resolve_camera_name
from engine.sources.devices import CameraInfo, CameraMode, fourcc_to_str, list_cameras, parse_mode, parse_v4l2_formats
from engine.sources.errors import SourceError

FAST = ReconnectPolicy(initial_s=0.001, max_s=0.004)


class FakeDevice:
    """Delivers `frames` flat images, then fails every read (the camera was unplugged)."""

    def __init__(self, frames: int, value: int = 0, size: tuple[int, int] = (32, 24)) -> None:
        self.frames, self.value, self.size = frames, value, size
        self.released = False

    def read(self):
        if self.released or self.frames <= 0:
            return False, None
        self.frames -= 1
        w, h = self.size
        return True, np.full((h, w, 3), self.value, np.uint8)

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1],
                cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*"MJPG")}.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


class FlakyOpener:
    """First open succeeds; after the device dies, the next `fail` opens raise, then it works."""

    def __init__(self, fail: int, frames_per_device: int = 3) -> None:
        self.fail, self.frames_per_device = fail, frames_per_device
        self.calls: list[tuple[int, CameraMode]] = []
        self.devices: list[FakeDevice] = []

    def __call__(self, index: int, mode: CameraMode) -> FakeDevice:
        self.calls.append((index, mode))
        if len(self.calls) > 1 and self.fail > 0:
            self.fail -= 1
            raise SourceError(f"camera {index} could not be opened (unplugged)")
        device = FakeDevice(self.frames_per_device, value=len(self.devices))
        self.devices.append(device)
        return device


def test_reconnects_after_n_failed_opens() -> None:
    opener = FlakyOpener(fail=4)
    states: list[str] = []
    source = CameraSource(0, mode=CameraMode(640, 480, 30, "MJPG"), opener=opener, policy=FAST,
                          on_state=states.append)
    source.open()
    frames = [source.read() for _ in range(6)]
    assert all(f is not None for f in frames), "a live camera never returns None for a transient failure"
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 0, 0, 1, 1, 1]  # second device after reconnect
    assert [f.index for f in frames] == list(range(6))
    assert len(opener.calls) == 1 + 4 + 1
    assert opener.devices[0].released
    assert states == ["streaming", "reconnecting", "streaming"]
    info = source.info()
    assert info["reconnects"] == 1 and info["state"] == "streaming"
    assert info["requested"] == {"width": 640, "height": 480, "fps": 30.0, "fourcc": "MJPG"}
    assert info["negotiated"] == {"width": 32, "height": 24, "fps": 30.0, "fourcc": "MJPG"}
    assert info["measured_fps"] > 0
    source.close()
    assert source.read() is None and states[-1] == "closed"


def test_read_exception_counts_as_failure() -> None:
    class Exploding(FakeDevice):
        def read(self):
            raise cv2.error("device vanished")

    devices = [Exploding(1), FakeDevice(2, value=7)]
    source = CameraSource(0, opener=lambda i, m: devices.pop(0), policy=FAST)
    source.open()
    assert int(source.read().image[0, 0, 0]) == 7


def test_close_interrupts_backoff_promptly() -> None:
    opener = FlakyOpener(fail=10**6, frames_per_device=1)
    source = CameraSource(0, opener=opener, policy=ReconnectPolicy(initial_s=30.0, max_s=60.0))
    source.open()
    assert source.read() is not None
    result: list = []
    reader = threading.Thread(target=lambda: result.append(source.read()))
    reader.start()
    deadline = time.monotonic() + 2.0
    while source.state != "reconnecting" and time.monotonic() < deadline:
        time.sleep(0.005)
    assert source.state == "reconnecting"
    t0 = time.monotonic()
    source.close()
    reader.join(timeout=1.0)
    assert not reader.is_alive(), "close() must interrupt the 30 s backoff"
    assert time.monotonic() - t0 < 1.0
    assert result == [None]


def test_first_open_failure_is_a_source_error() -> None:
    def never(index: int, mode: CameraMode):
        raise SourceError(f"camera {index} could not be opened (missing, busy, or no permission)")

    with pytest.raises(SourceError, match="camera 5 could not be opened"):
        CameraSource(5, opener=never).open()

    def os_failure(index: int, mode: CameraMode):
        raise OSError("device busy")

    with pytest.raises(SourceError, match="device busy"):
        CameraSource(5, opener=os_failure).open()


def test_name_is_resolved_at_every_reconnect() -> None:
    # After replugging, the camera comes back under another index.
    listings = [[CameraInfo(0, "Integrated Camera", "/dev/video0"), CameraInfo(2, "USB Cam", "/dev/video2")],
                [CameraInfo(0, "Integrated Camera", "/dev/video0"), CameraInfo(4, "USB Cam", "/dev/video4")]]
    opener = FlakyOpener(fail=0, frames_per_device=1)
    source = CameraSource("usb cam", opener=opener, lister=lambda: listings.pop(0) if len(listings) > 1 else listings[0],
                          policy=FAST)
    source.open()
    source.read()
    source.read()
    assert [index for index, _ in opener.calls] == [2, 4]
    assert source.source_id == "camera:usb cam"


def test_resolve_camera_name() -> None:
    cams = [CameraInfo(0, "Integrated Camera", "/dev/video0"), CameraInfo(2, "HD Pro Webcam C920", "/dev/video2"),
            CameraInfo(4, "HD Pro Webcam C922", "/dev/video4")]
    assert resolve_camera_name("integrated camera", cams) == 0
    assert resolve_camera_name("C920", cams) == 2
    with pytest.raises(SourceError, match="ambiguous"):
        resolve_camera_name("HD Pro", cams)
    with pytest.raises(SourceError, match=r"no camera named 'Brio' \(available: 0 'Integrated Camera'"):
        resolve_camera_name("Brio", cams)


def test_backoff_doubles_to_cap() -> None:
    delays = backoff_delays(ReconnectPolicy())
    assert [next(delays) for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


V4L2_OUTPUT = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\t\tInterval: Discrete 0.067s (15.000 fps)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""


def test_parse_v4l2_formats() -> None:
    assert parse_v4l2_formats(V4L2_OUTPUT) == (
        CameraMode(1280, 720, 30.0, "MJPG"), CameraMode(1280, 720, 15.0, "MJPG"),
        CameraMode(640, 480, 30.0, "MJPG"), CameraMode(640, 480, 30.0, "YUYV"))
    assert parse_v4l2_formats("") == ()
    stepwise = ("\t[0]: 'YUYV' (YUYV 4:2:2)\n\t\tSize: Stepwise 16x16 - 1920x1080 with step 1/1\n"
                "\t\t\tInterval: Stepwise 0.033s - 1.000s with step 0.000s (1.000-30.000 fps)\n")
    assert parse_v4l2_formats(stepwise) == (CameraMode(1920, 1080, 30.0, "YUYV"),)


def test_parse_mode_and_fourcc() -> None:
    assert parse_mode("1280x720@30:mjpg") == CameraMode(1280, 720, 30.0, "MJPG")
    assert parse_mode("640x480") == CameraMode(640, 480)
    assert str(CameraMode(1280, 720, 30.0, "MJPG")) == "1280x720@30:MJPG"
    with pytest.raises(ValueError):
        parse_mode("hd")
    assert fourcc_to_str(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG"
    assert fourcc_to_str(0) == ""


def test_list_cameras_never_crashes(tmp_path: Path) -> None:
    assert isinstance(list_cameras(with_modes=False), list)
    assert list_cameras(sysfs=tmp_path / "missing") == []
    # A fake sysfs tree: one capture node, one UVC metadata node (left out).
    for name, label, index in (("video0", "Fake Cam", "0"), ("video1", "Fake Cam", "1")):
        node = tmp_path / name
        node.mkdir()
        (node / "name").write_text(label + "\n")
        (node / "index").write_text(index + "\n")
    import sys

    if sys.platform.startswith("linux"):
        assert list_cameras(with_modes=False, sysfs=tmp_path) == [CameraInfo(0, "Fake Cam", "/dev/video0")]
