"""A client's session on the server: which options its remote stage is built with.

The session id carries them (`<random hex>.<base64 JSON>`), so any replica can build the
session's stage from the id alone, and a restarted server rebuilds it from the next request.
Only plain, whitelisted StageOptions fields travel; a device never does (the server's own
`--device` decides) and neither do client paths (exports are written by the client).
"""
from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, fields, replace
from typing import Any

from engine.remote.wire import WireError
from engine.stage_factory import StageOptions

# StageOptions fields that shape a stage's results; each has a plain JSON type.
SENT_OPTIONS = ("face_backend", "body_backend", "volume_backend", "smoothing", "hfov_deg", "static_images",
                "person", "live", "volume_yaw_deg", "volume_quality", "target_fps", "mesh_colours")
MAX_SESSION_ID = 2048


@dataclass(frozen=True)
class SessionSpec:
    options: dict[str, Any]
    lossless: bool
    nonce: str

    @property
    def short_id(self) -> str:
        return self.nonce[:8]

    def stage_options(self, device: str) -> StageOptions:
        return replace(StageOptions(), device=device, **self.options)

    @classmethod
    def from_options(cls, options: StageOptions, lossless: bool) -> "SessionSpec":
        return cls({k: getattr(options, k) for k in SENT_OPTIONS}, lossless, secrets.token_hex(8))

    def session_id(self) -> str:
        payload = json.dumps({"options": self.options, "lossless": self.lossless}, separators=(",", ":"))
        return f"{self.nonce}.{base64.urlsafe_b64encode(payload.encode()).decode()}"


def decode_session_id(session_id: str) -> SessionSpec:
    """The spec in a session id; WireError for anything that is not a valid one."""
    if not session_id or len(session_id) > MAX_SESSION_ID or "." not in session_id:
        raise WireError("no session id (header serve_multiplexed_model_id)")
    nonce, _, payload = session_id.partition(".")
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, UnicodeDecodeError):
        raise WireError("the session id is not ours") from None
    if not isinstance(data, dict) or not isinstance(data.get("options"), dict):
        raise WireError("the session id has no options")
    defaults = StageOptions()
    types = {f.name: f for f in fields(StageOptions)}
    options = {}
    for key, value in data["options"].items():
        if key not in SENT_OPTIONS or key not in types:
            raise WireError(f"session option {key!r} is not accepted")
        default = getattr(defaults, key)
        ok = (value is None or isinstance(value, (bool, int, float, str))) and \
            (default is None or value is None or isinstance(value, type(default)) or
             (isinstance(default, float) and isinstance(value, int)))
        if not ok:
            raise WireError(f"session option {key}: {value!r} has the wrong type")
        options[key] = value
    return SessionSpec(options, bool(data.get("lossless", False)), nonce)
