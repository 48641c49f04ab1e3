"""User settings that persist between runs (platformdirs config dir, JSON).

`AppSettings` is an evented dataclass (psygnal): every field emits a signal when it
changes, so Qt views subscribe to the model instead of the model knowing the views.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import evented

from engine.paths import config_dir

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
STAGE_NAMES = ("perception", "face", "body", "volume")


@evented
@dataclass
class AppSettings:
    last_source: str = ""
    stages: dict[str, bool] = field(default_factory=lambda: {
        "perception": True, "face": True, "body": True, "volume": False})
    view: str = "overlay"  # overlay | mesh | volume | split
    device: str = "auto"  # auto | cpu | cuda
    face_backend: str = "auto"  # auto | anny | bfm | tddfa
    body_backend: str = "auto"  # auto | anny | hmr
    volume_backend: str = "auto"  # auto | field | pifu
    smoothing: bool = True
    mirror: bool = False
    hfov_deg: float = 60.0
    volume_yaw_deg: float = 30.0  # orbit angle of the live volumetric view
    volume_quality: str = "auto"  # auto | low | medium | high (engine.volume.quality)
    target_fps: float = 0.0  # frame-time budget of the live volume; 0 = the source's fps, at most 30
    person: int = -1  # -1: the largest/most central person; k >= 0: the k-th from the left
    camera_mode: str = ""  # "WxH@fps" or "" for the device default
    show_hud: bool = True
    virtual_camera: bool = False
    mjpeg_address: str = ""  # "" = off, else HOST:PORT
    event_mode: bool = False
    window_geometry: str = ""  # Qt saveGeometry(), hex


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> AppSettings:
    """Read the saved settings; unknown keys are ignored and a broken file is replaced
    by defaults with a warning (never a crash at start-up)."""
    path = path or settings_path()
    settings = AppSettings()
    if not path.exists():
        return settings
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        log.warning("settings file %s is unreadable (%s): using defaults", path, exc)
        return settings
    known = {f.name: f for f in dataclasses.fields(AppSettings)}
    for key, value in data.items():
        if key not in known:
            continue
        default = getattr(settings, key)
        if isinstance(default, dict) and isinstance(value, dict):
            merged = dict(default)
            merged.update({k: v for k, v in value.items() if k in default})
            value = merged
        elif type(default) is float and isinstance(value, int):
            value = float(value)
        elif type(value) is not type(default):
            log.warning("settings: ignoring %s=%r (expected %s)", key, value, type(default).__name__)
            continue
        problem = _check_value(key, value)
        if problem:
            log.warning("settings: ignoring %s=%r (%s); using %r", key, value, problem, default)
            continue
        setattr(settings, key, value)
    return settings


def _check_value(key: str, value: Any) -> str | None:
    """Why a saved value of the right type is still unusable, or None when it is fine."""
    if key == "volume_quality":
        from engine.volume.quality import QUALITY_CHOICES

        return None if value in QUALITY_CHOICES else f"choose one of {', '.join(QUALITY_CHOICES)}"
    if key == "target_fps":
        return None if value == value and 0.0 <= value <= 240.0 else "expected 0 (auto) to 240"
    return None


def settings_to_dict(settings: AppSettings) -> dict[str, Any]:
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(AppSettings)}


def save_settings(settings: AppSettings, path: Path | None = None) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path = path or settings_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(settings_to_dict(settings), indent=2, sort_keys=True))
    tmp.replace(path)


def reset_settings(path: Path | None = None) -> None:
    path = path or settings_path()
    if path.exists():
        path.unlink()
        log.info("settings reset: removed %s", path)
