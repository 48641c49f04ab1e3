"""Which cameras exist and what they can do: names from /sys/class/video4linux, modes from
`v4l2-ctl --list-formats-ext` (or by probing common sizes with OpenCV when it is absent)."""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2

log = logging.getLogger(__name__)

SYSFS_V4L = Path("/sys/class/video4linux")
PROBE_SIZES = ((640, 480), (1280, 720), (1920, 1080))  # common webcam sizes, for probing
V4L2_CTL_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class CameraMode:
    """A capture mode: size in pixels, frames per second and pixel format (FOURCC, e.g. "MJPG").

    fps 0 or fourcc "" mean "whatever the driver picks".
    """

    width: int
    height: int
    fps: float = 0.0
    fourcc: str = ""

    def __str__(self) -> str:
        text = f"{self.width}x{self.height}"
        if self.fps:
            text += f"@{self.fps:g}"
        if self.fourcc:
            text += f":{self.fourcc}"
        return text


@dataclass(frozen=True)
class CameraInfo:
    """One capture device: OpenCV index, human name, device node, and its modes (may be empty)."""

    index: int
    name: str
    path: str
    modes: tuple[CameraMode, ...] = field(default_factory=tuple)


_MODE_RE = re.compile(r"^(\d+)x(\d+)(?:@(\d+(?:\.\d+)?))?(?::([A-Za-z0-9 ]{1,4}))?$")


def parse_mode(text: str) -> CameraMode:
    """"1280x720", "1280x720@30" or "1280x720@30:MJPG" -> CameraMode. Raises ValueError."""
    match = _MODE_RE.match(text.strip())
    if not match:
        raise ValueError(f"camera mode must look like 1280x720, 1280x720@30 or 1280x720@30:MJPG, got {text!r}")
    w, h, fps, fourcc = match.groups()
    return CameraMode(int(w), int(h), float(fps) if fps else 0.0, (fourcc or "").upper())


def parse_v4l2_formats(text: str) -> tuple[CameraMode, ...]:
    """Modes from the output of `v4l2-ctl --list-formats-ext` (one entry per size and rate)."""
    modes: list[CameraMode] = []
    fourcc, size = "", None
    for line in text.splitlines():
        line = line.strip()
        if m := re.match(r"\[\d+\]:\s*'(\w{1,4})'", line):
            fourcc, size = m.group(1), None
        elif line.startswith("Size:") and (sizes := re.findall(r"(\d+)x(\d+)", line)):
            # "Discrete 640x480", or "Stepwise 16x16 - 1920x1080 ...": keep the largest.
            size = (int(sizes[-1][0]), int(sizes[-1][1]))
        elif line.startswith("Interval") and size is not None and (
                m := re.search(r"\((?:[\d.]+-)?([\d.]+)\s*fps\)", line)):
            # "(30.000 fps)", or a stepwise range "(1.000-30.000 fps)": keep the highest rate.
            modes.append(CameraMode(size[0], size[1], float(m.group(1)), fourcc))
    return tuple(dict.fromkeys(modes))


def fourcc_to_str(code: float) -> str:
    """OpenCV's CAP_PROP_FOURCC value -> "MJPG" ("" when unknown)."""
    value = int(code)
    text = "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4))
    return text if value > 0 and text.isprintable() else ""


def _v4l2_modes(path: str) -> tuple[CameraMode, ...] | None:
    exe = shutil.which("v4l2-ctl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-d", path, "--list-formats-ext"], capture_output=True, text=True,
                             timeout=V4L2_CTL_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("v4l2-ctl could not list modes of %s: %s", path, exc)
        return None
    return parse_v4l2_formats(out)


def probe_modes(index: int) -> tuple[CameraMode, ...]:
    """Ask OpenCV for each common size and keep what the driver really negotiates (slow: opens
    the device once)."""
    cap = cv2.VideoCapture(index, cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY)
    try:
        if not cap.isOpened():
            return ()
        found: list[CameraMode] = []
        for w, h in PROBE_SIZES:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
            mode = CameraMode(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                              float(cap.get(cv2.CAP_PROP_FPS) or 0.0), fourcc_to_str(cap.get(cv2.CAP_PROP_FOURCC)))
            if mode.width > 0 and mode not in found:
                found.append(mode)
        return tuple(found)
    finally:
        cap.release()


def _is_capture_node(node: Path) -> bool:
    # UVC cameras expose a second node per camera for metadata; its index file says 1.
    try:
        return (node / "index").read_text().strip() in ("", "0")
    except OSError:
        return True


def list_cameras(*, with_modes: bool = True, sysfs: Path = SYSFS_V4L) -> list[CameraInfo]:
    """Capture devices on this machine, by OpenCV index. Never raises; [] when there are none.

    Linux: /sys/class/video4linux/videoN (name file) — metadata nodes are left out. Other
    systems: indices 0..3 that OpenCV can open, named "Camera N".
    """
    cameras: list[CameraInfo] = []
    if sys.platform.startswith("linux"):
        try:
            nodes = sorted((p for p in sysfs.iterdir() if re.fullmatch(r"video\d+", p.name)),
                           key=lambda p: int(p.name[5:]))
        except OSError:
            nodes = []  # no video4linux at all (containers, servers)
        for node in nodes:
            if not _is_capture_node(node):
                continue
            try:
                name = (node / "name").read_text().strip() or node.name
            except OSError:
                name = node.name
            index, path = int(node.name[5:]), f"/dev/{node.name}"
            modes: tuple[CameraMode, ...] = ()
            if with_modes:
                found = _v4l2_modes(path)
                modes = found if found is not None else probe_modes(index)
            cameras.append(CameraInfo(index, name, path, modes))
        return cameras
    for index in range(4):
        cap = cv2.VideoCapture(index)
        try:
            if cap.isOpened():
                cameras.append(CameraInfo(index, f"Camera {index}", str(index),
                                          probe_modes(index) if with_modes else ()))
        finally:
            cap.release()
    return cameras


def format_cameras(cameras: list[CameraInfo]) -> str:
    """Human-readable listing for `python main.py cameras`."""
    if not cameras:
        return "no cameras found"
    lines: list[str] = []
    for cam in cameras:
        lines.append(f"camera:{cam.index}  {cam.name}  ({cam.path})")
        by_format: dict[str, list[str]] = {}
        for mode in cam.modes:
            by_format.setdefault(mode.fourcc or "?", []).append(f"{mode.width}x{mode.height}@{mode.fps:g}")
        for fourcc, sizes in by_format.items():
            lines.append(f"    {fourcc}: {', '.join(sizes)}")
    return "\n".join(lines)
