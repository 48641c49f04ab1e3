"""User settings that persist between runs (platformdirs config dir, JSON).

`AppSettings` is an evented dataclass (psygnal): every field emits a signal when it
changes, so Qt views subscribe to the model instead of the model knowing the views.
Every value read from the file is checked against `engine.settings_schema` (the same rules
as the command line): a bad value is never used; one warning names the key, the value and
the default used instead, and the file as it was is kept next to it as settings.json.bad.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psygnal import evented

from engine.paths import config_dir
from engine.settings_schema import check

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
    shading: str = "textured"  # mesh view: textured (the person's colours) | phong | matcap
    device: str = "auto"  # auto | cpu | cuda
    face_backend: str = "auto"  # auto | anny | bfm | tddfa
    body_backend: str = "auto"  # auto | anny | hmr | pointhmr
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
    remote_url: str = ""  # a `holocap serve` for the heavy stages (the app's --remote); "" = all here
    event_mode: bool = False
    window_geometry: str = ""  # Qt saveGeometry(), hex
    segment_minutes: float = 10.0  # runs without an end cut videos/results into segments this long
    disk_budget_gb: float = 20.0  # the outputs of such a run keep within this; the oldest go first


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> AppSettings:
    """Read the saved settings; unknown keys are ignored, bad values and a broken file are
    replaced by defaults with one warning each (never a crash at start-up)."""
    path = path or settings_path()
    settings = AppSettings()
    if not path.exists():
        return settings
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        backup = _keep_backup(path)
        log.warning("settings file %s is unreadable (%s): using defaults (the file is kept as %s)",
                    path, exc, backup)
        return settings
    known = {f.name for f in dataclasses.fields(AppSettings)}
    bad = False
    for key, value in data.items():
        if key not in known:
            continue
        default = getattr(settings, key)
        problem = _problem(key, value, default)
        if problem:
            bad = True
            log.warning("settings: %s=%s is not allowed (%s); using the default %s",
                        key, json.dumps(value), problem, json.dumps(default))
            continue
        if isinstance(default, dict):
            value = {**default, **{k: v for k, v in value.items() if k in default}}
        elif type(default) is float:
            value = float(value)
        setattr(settings, key, value)
    if bad:
        log.warning("settings: the file as it was is kept as %s", _keep_backup(path))
    return settings


def _problem(key: str, value: Any, default: Any) -> str | None:
    """Why a saved value is unusable (wrong type, out of range, not a choice), or None."""
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, type(default[k]))
                                                  for k, v in value.items() if k in default):
            return f"expected an object like {json.dumps(default)}"
        return None
    if isinstance(default, bool) or isinstance(default, str):
        if type(value) is not type(default):
            return f"expected {type(default).__name__}"
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "expected a number"
    return check(key, value)


def _keep_backup(path: Path) -> Path:
    backup = path.with_name(path.name + ".bad")
    try:
        shutil.copyfile(path, backup)
    except OSError as exc:
        log.warning("could not keep a backup of %s: %s", path, exc)
    return backup


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
