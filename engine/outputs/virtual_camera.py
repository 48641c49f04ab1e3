"""The virtual camera output: the clean rendered view, letterboxed to 1280×720@30, via pyvirtualcam.

Video-call apps expect a steady frame rate, so the output's thread sends at the camera's
rate (pyvirtualcam's `sleep_until_next_frame`), repeating the newest image when the pipeline
is slower and skipping images when it is faster.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.outputs.base import ThreadedOutput, letterbox
from engine.outputs.diagnose import VirtualCameraDiagnosis, diagnose_virtual_camera

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VirtualCameraSettings:
    """width, height: pixels of the virtual camera; fps: its frame rate.
    backend: a pyvirtualcam backend name ("v4l2loopback", "obs", ... or one registered with
    pyvirtualcam.register_backend); None tries all. device: e.g. "/dev/video4"; None: first free."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    backend: str | None = None
    device: str | None = None


class VirtualCameraUnavailable(RuntimeError):
    """Opening the virtual camera failed; `diagnosis` says why and what to install."""

    def __init__(self, diagnosis: VirtualCameraDiagnosis, cause: str) -> None:
        super().__init__(diagnosis.message())
        self.diagnosis = diagnosis
        self.cause = cause


class VirtualCamera(ThreadedOutput):
    """Output to a pyvirtualcam camera. `start()` raises VirtualCameraUnavailable when no
    device can be opened. `device` and `backend` tell what was opened."""

    name = "virtual_camera"

    def __init__(self, settings: VirtualCameraSettings = VirtualCameraSettings()) -> None:
        super().__init__()
        self.settings = settings
        self._camera: Any = None  # pyvirtualcam.Camera once open

    @property
    def device(self) -> str | None:
        return None if self._camera is None else str(self._camera.device)

    @property
    def backend(self) -> str | None:
        return None if self._camera is None else str(self._camera.backend)

    def _open(self) -> None:
        import pyvirtualcam  # imported here: its native backends load at import time
        import pyvirtualcam.camera

        s = self.settings
        known = pyvirtualcam.camera.BACKENDS
        if s.backend is not None and s.backend not in known:
            # Checked here: pyvirtualcam would raise KeyError from a half-built Camera.
            raise ValueError(f"unknown pyvirtualcam backend {s.backend!r}; known: {', '.join(known) or 'none'}")
        try:
            self._camera = pyvirtualcam.Camera(width=s.width, height=s.height, fps=s.fps,
                                               fmt=pyvirtualcam.PixelFormat.BGR,
                                               device=s.device, backend=s.backend)
        except RuntimeError as exc:  # every backend refused (pyvirtualcam joins their messages)
            diagnosis = diagnose_virtual_camera(error=str(exc).replace("\n", "; "))
            logger.warning("%s", diagnosis.message())
            raise VirtualCameraUnavailable(diagnosis, str(exc)) from exc
        logger.info("virtual camera open: %s (%s backend), %dx%d@%g",
                    self._camera.device, self._camera.backend, s.width, s.height, s.fps)

    def _run(self) -> None:
        s = self.settings
        item = self._slot.get()  # nothing to show until the first image arrives
        if item is None:
            return
        out = letterbox(item.image, s.width, s.height)
        while not self._stop.is_set():
            self._camera.send(np.ascontiguousarray(out))
            self._delivered += 1
            self._camera.sleep_until_next_frame()
            newer = self._slot.get_nowait()
            if newer is not None:
                out = letterbox(newer.image, s.width, s.height)

    def _release(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
