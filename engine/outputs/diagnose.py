"""Why no virtual camera could be opened, and exactly what to install or run.

pyvirtualcam needs a virtual camera device that the operating system provides: the
v4l2loopback kernel module on Linux, OBS Studio's virtual camera on Windows and macOS.
`diagnose_virtual_camera` inspects the machine (on Linux: sysfs and /dev) and returns a
`VirtualCameraDiagnosis`; the roots are parameters so tests can point at fake trees.
"""
from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="holocap"'
RELOAD = f"sudo modprobe -r v4l2loopback && {MODPROBE}"
INSTALL_LINUX = ("install the v4l2loopback kernel module (Debian/Ubuntu: `sudo apt install "
                 "v4l2loopback-dkms`; Fedora: `sudo dnf install akmod-v4l2loopback`; Arch: "
                 "`sudo pacman -S v4l2loopback-dkms`)")
# Names v4l2loopback gives its devices: the default card label is "Dummy video device (0x0000)".
LOOPBACK_NAME_HINTS = ("loopback", "dummy")
# sysfs attributes that only v4l2loopback creates on its video devices.
LOOPBACK_SYSFS_ATTRS = ("max_openers", "buffers")


@dataclass(frozen=True)
class VirtualCameraDiagnosis:
    """ok: a usable virtual camera device seems present. problem: what is wrong (empty when
    ok). fix: what the user should install or run (empty when ok). devices: the loopback
    devices found (Linux: "/dev/videoN (card label)")."""

    ok: bool
    problem: str
    fix: str
    devices: tuple[str, ...] = ()

    def message(self) -> str:
        """One human-readable paragraph for logs and dialogs."""
        if self.ok:
            return "virtual camera available: " + (", ".join(self.devices) or "yes")
        return f"No virtual camera: {self.problem}\nFix: {self.fix}"


@dataclass(frozen=True)
class LoopbackDevice:
    """A v4l2loopback device seen in sysfs: node is "videoN", label its card label."""

    node: str
    label: str


def find_loopback_devices(sysfs_root: Path = Path("/sys")) -> list[LoopbackDevice]:
    """The v4l2loopback devices listed under <sysfs_root>/class/video4linux, by node name."""
    class_dir = sysfs_root / "class" / "video4linux"
    if not class_dir.is_dir():
        return []
    found = []
    for entry in sorted(class_dir.iterdir(), key=lambda p: p.name):
        label = _read_text(entry / "name")
        if _is_loopback(entry, label):
            found.append(LoopbackDevice(entry.name, label))
    return found


def _is_loopback(entry: Path, label: str) -> bool:
    if any(hint in label.lower() for hint in LOOPBACK_NAME_HINTS):
        return True
    if any((entry / attr).exists() for attr in LOOPBACK_SYSFS_ATTRS):
        return True
    driver = entry / "device" / "driver"
    return driver.exists() and "v4l2loopback" in os.path.realpath(driver)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:  # absent or unreadable attribute: treat as no name
        return ""


def diagnose_linux(sysfs_root: Path = Path("/sys"), dev_root: Path = Path("/dev"),
                   error: str | None = None) -> VirtualCameraDiagnosis:
    """Linux: is v4l2loopback loaded, did it create devices, can we write to them?

    error: the message pyvirtualcam gave when opening failed, if any (quoted in `problem`).
    """
    devices = find_loopback_devices(sysfs_root)
    module_loaded = (sysfs_root / "module" / "v4l2loopback").is_dir()
    names = tuple(f"{dev_root / d.node} ({d.label or 'no label'})" for d in devices)
    if not devices and not module_loaded:
        return VirtualCameraDiagnosis(
            False, "the v4l2loopback kernel module is not loaded, so there is no virtual camera device",
            f"{INSTALL_LINUX}, then run `{MODPROBE}` (exclusive_caps=1 lets browsers and "
            "video-call apps see the device).")
    if not devices:
        return VirtualCameraDiagnosis(
            False, "v4l2loopback is loaded but no loopback device exists",
            f"reload it with a device: `{RELOAD}`")
    missing = [dev_root / d.node for d in devices if not (dev_root / d.node).exists()]
    if len(missing) == len(devices):
        return VirtualCameraDiagnosis(
            False, f"the loopback device node(s) {', '.join(map(str, missing))} do not exist",
            f"check udev, or reload the module: `{RELOAD}`", names)
    writable = [dev_root / d.node for d in devices if os.access(dev_root / d.node, os.W_OK)]
    if not writable:
        return VirtualCameraDiagnosis(
            False, f"no permission to write to {', '.join(str(dev_root / d.node) for d in devices)}",
            "add yourself to the video group (`sudo usermod -aG video $USER`) and log in again.", names)
    if error:
        return VirtualCameraDiagnosis(
            False, f"loopback device(s) exist ({', '.join(names)}) but opening failed: {error}",
            "close other programs writing to the device (OBS, another holocap), or pass the "
            f"device explicitly; if it still fails, reload the module: `{RELOAD}`", names)
    return VirtualCameraDiagnosis(True, "", "", names)


def diagnose_obs(system: str, error: str | None = None) -> VirtualCameraDiagnosis:
    """Windows and macOS: pyvirtualcam drives OBS Studio's built-in virtual camera."""
    seen = f" (pyvirtualcam said: {error})" if error else ""
    if system == "Windows":
        fix = ("install OBS Studio 26 or newer (https://obsproject.com); its virtual camera "
               "is registered on install — start and stop 'Virtual Camera' in OBS once if "
               "it is still not found, and close OBS's own virtual camera output while holocap uses it.")
    else:
        fix = ("install OBS Studio (https://obsproject.com; version 30 or newer on macOS 13+), "
               "click 'Start Virtual Camera' once and allow the system extension in System "
               "Settings > Privacy & Security, then stop it and quit OBS.")
    return VirtualCameraDiagnosis(False, f"no OBS virtual camera found on {system}{seen}", fix)


def diagnose_virtual_camera(system: str | None = None, error: str | None = None,
                            sysfs_root: Path = Path("/sys"), dev_root: Path = Path("/dev")) -> VirtualCameraDiagnosis:
    """Diagnose the virtual camera on `system` (platform.system() when None).

    error: pyvirtualcam's message when opening failed; without it a Linux machine with a
    writable loopback device is reported ok (Windows/macOS cannot be inspected without
    opening, so they are reported not ok only when an error is given).
    """
    system = system or platform.system()
    if system == "Linux":
        return diagnose_linux(sysfs_root, dev_root, error)
    if system in ("Windows", "Darwin"):
        if error is None:
            return VirtualCameraDiagnosis(True, "", "")
        return diagnose_obs("macOS" if system == "Darwin" else system, error)
    return VirtualCameraDiagnosis(
        False, f"virtual cameras are not supported on {system}",
        "use the MJPEG stream (`--serve-mjpeg 127.0.0.1:8080`) and capture it in OBS or a browser.")
