"""The virtual camera through a fake pyvirtualcam backend registered by the test."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import pyvirtualcam
import pyvirtualcam.camera

from engine.outputs.base import letterbox_geometry
from engine.outputs.virtual_camera import VirtualCamera, VirtualCameraSettings, VirtualCameraUnavailable
from tests.engine.outputs.synthetic import decode_index, index_image


class FakeBackend:
    """Implements pyvirtualcam's Backend interface; keeps what it receives.

    pyvirtualcam hands `send` a flat C-contiguous uint8 array in the requested pixel format."""

    instances: list["FakeBackend"] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.closed = False
        self.lock = threading.Lock()
        FakeBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        with self.lock:
            self.frames.append(frame.copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "fake0"

    def native_fourcc(self) -> int | None:
        return None


class RefusingBackend(FakeBackend):
    def __init__(self, **kw) -> None:
        raise RuntimeError("device not found")


@pytest.fixture
def fake_backends():
    FakeBackend.instances = []
    pyvirtualcam.register_backend("holocap-test-fake", FakeBackend)
    pyvirtualcam.register_backend("holocap-test-refusing", RefusingBackend)
    yield
    # register_backend writes a module-level table: leave it as we found it.
    pyvirtualcam.camera.BACKENDS.pop("holocap-test-fake", None)
    pyvirtualcam.camera.BACKENDS.pop("holocap-test-refusing", None)


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_frames_arrive_letterboxed_at_1280x720_in_bgr(fake_backends):
    cam = VirtualCamera(VirtualCameraSettings(backend="holocap-test-fake"))
    cam.start()
    try:
        backend = FakeBackend.instances[-1]
        assert (backend.width, backend.height, backend.fps) == (1280, 720, 30.0)
        assert backend.fourcc == pyvirtualcam.camera.encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)
        assert cam.device == "fake0" and cam.backend == "holocap-test-fake"
        image = index_image(777, 320, 240)
        image[:, :, 0] = np.maximum(image[:, :, 0], 40)  # a blue tint marks the channel order
        cam.send(image, 777, 0.0)
        _wait(lambda: len(backend.frames) >= 3)  # the newest image is repeated at the camera's rate
    finally:
        cam.close()
    assert backend.closed
    frame = backend.frames[0].reshape(720, 1280, 3)
    x0, y0, w, h = letterbox_geometry(320, 240, 1280, 720)
    assert (x0, y0, w, h) == (160, 0, 960, 720)
    assert not frame[:, :x0].any() and not frame[:, x0 + w:].any()  # black bars
    content = frame[y0:y0 + h, x0:x0 + w]
    assert decode_index(content) == 777
    dark = content[content[:, :, 1] < 20]  # a 0-bit bar: B=40 survives, G and R stay 0
    assert abs(int(np.median(dark[:, 0])) - 40) <= 1 and int(dark[:, 2].max()) <= 1


def test_newest_image_replaces_the_repeated_one(fake_backends):
    cam = VirtualCamera(VirtualCameraSettings(backend="holocap-test-fake", fps=60.0))
    with cam:
        backend = FakeBackend.instances[-1]
        cam.send(index_image(1), 1, 0.0)
        _wait(lambda: len(backend.frames) >= 2)
        cam.send(index_image(2), 2, 0.1)
        _wait(lambda: decode_index(backend.frames[-1].reshape(720, 1280, 3)[:, 160:1120]) == 2)
    indices = [decode_index(f.reshape(720, 1280, 3)[:, 160:1120]) for f in backend.frames]
    assert indices[0] == 1 and indices[-1] == 2 and indices == sorted(indices)


def test_open_failure_raises_with_a_diagnosis(fake_backends):
    cam = VirtualCamera(VirtualCameraSettings(backend="holocap-test-refusing"))
    with pytest.raises(VirtualCameraUnavailable) as info:
        cam.start()
    assert "device not found" in info.value.cause
    assert not info.value.diagnosis.ok and info.value.diagnosis.fix
    cam.close()  # closing a camera that never opened is harmless


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown pyvirtualcam backend"):
        VirtualCamera(VirtualCameraSettings(backend="no-such-backend")).start()
