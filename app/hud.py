"""What the HUD shows: the pipeline's rates and latency, per-stage times, where each stage
runs, the volume's level and the camera's negotiated mode, as 'label: value' pairs."""
from __future__ import annotations

from typing import Any


def hud_stats(stats: Any, session: Any, render_fps: float, volume_quality: str) -> dict[str, Any]:
    """stats: PipelineStats; session: the app's CaptureSession (remote status, volume level,
    source info)."""
    hud: dict[str, Any] = {
        "capture fps": stats.capture_fps,
        "process fps": stats.process_fps,
        "render fps": render_fps,
        "dropped": stats.frames_dropped,
        "latency ms": stats.latency_ms,
        **{f"{k} ms": v for k, v in stats.stage_ms.items()},
    }
    for name in stats.background:  # stages at their own rate: say how fast they update
        hud[f"{name} fps"] = stats.stage_fps.get(name, 0.0)
    for name, where in session.remote_status().items():
        hud[f"{name} runs"] = where
    level = session.volume_level()
    if level is not None:
        hud["volume level"] = f"{level} ({volume_quality})"
    info = session.source_info()
    if info.get("kind") == "camera":  # what was asked for, what the driver gave, what arrives
        req, neg = info.get("requested", {}), info.get("negotiated", {})
        hud["camera"] = (f"{neg.get('width')}x{neg.get('height')} {neg.get('fourcc')} "
                         f"fps req {req.get('fps')} / neg {neg.get('fps')} / got {info.get('measured_fps')}")
        if info.get("state") == "reconnecting":
            hud["camera"] = "reconnecting…"
    return hud
