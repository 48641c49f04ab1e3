"""What each setting may hold: one schema for the settings file and the command line.

A value from either place is checked by the same `Rule`, so `device: tpu` in settings.json
and `--device tpu` are refused with the same words (the key, the value, what is allowed).
The back-end and quality choices live here, imported by the stages, so a new back-end is
added in one place. Nothing heavy is imported: flags are checked before any model loads.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

FACE_BACKENDS = ("auto", "anny", "bfm", "tddfa")
BODY_BACKENDS = ("auto", "anny", "hmr", "pointhmr")
VOLUME_BACKENDS = ("auto", "field", "pifu")
DEVICES = ("auto", "cpu", "cuda")
VIEWS = ("overlay", "mesh", "volume", "split")
SHADINGS = ("textured", "phong", "matcap")  # the mesh view: the person's colours, lit, clay
QUALITY_CHOICES = ("auto", "low", "medium", "high")

# http(s)://host[:port][/path prefix] (a TLS proxy may serve holocap under a path)
_SERVER_URL = re.compile(r"^https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\])(:\d{1,5})?(/[A-Za-z0-9._~\-/]*)?$")
_CAMERA_MODE = re.compile(r"^\d{2,5}x\d{2,5}(@\d+(\.\d+)?)?$")


@dataclass(frozen=True)
class Rule:
    """kind: "choice" (one of `choices`), "number" (lo ≤ x ≤ hi, finite; `integer` for ints),
    "text" (matching `pattern`, or empty when `empty_ok`), "flag" (a bool)."""

    kind: str
    choices: tuple[str, ...] = ()
    lo: float = -math.inf
    hi: float = math.inf
    integer: bool = False
    pattern: re.Pattern[str] | None = None
    empty_ok: bool = True
    what: str = ""  # how to describe allowed text values

    def allowed(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "number":
            kind = "a whole number" if self.integer else "a number"
            return f"{kind} from {self.lo:g} to {self.hi:g}"
        if self.kind == "flag":
            return "true or false"
        return self.what or "text"

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None when it is."""
        if self.kind == "choice":
            return None if isinstance(value, str) and value in self.choices else f"expected {self.allowed()}"
        if self.kind == "flag":
            return None if isinstance(value, bool) else "expected true or false"
        if self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected {self.allowed()}"
            if self.integer and not float(value).is_integer():
                return f"expected {self.allowed()}"
            if not math.isfinite(value) or not self.lo <= value <= self.hi:
                return f"expected {self.allowed()}"
            return None
        if not isinstance(value, str):
            return f"expected {self.allowed()}"
        if value == "" and self.empty_ok:
            return None
        if self.pattern is not None and not self.pattern.match(value):
            return f"expected {self.allowed()}"
        return None


RULES: dict[str, Rule] = {
    "device": Rule("choice", DEVICES),
    "face_backend": Rule("choice", FACE_BACKENDS),
    "body_backend": Rule("choice", BODY_BACKENDS),
    "volume_backend": Rule("choice", VOLUME_BACKENDS),
    "view": Rule("choice", VIEWS),
    "shading": Rule("choice", SHADINGS),
    "volume_quality": Rule("choice", QUALITY_CHOICES),
    "hfov_deg": Rule("number", lo=1.0, hi=179.0),
    "volume_yaw_deg": Rule("number", lo=-180.0, hi=180.0),
    "target_fps": Rule("number", lo=0.0, hi=240.0),
    "person": Rule("number", lo=-1, hi=99, integer=True),
    "segment_minutes": Rule("number", lo=0.05, hi=24 * 60.0),
    "disk_budget_gb": Rule("number", lo=0.01, hi=1e6),
    "camera_mode": Rule("text", pattern=_CAMERA_MODE, what="WIDTHxHEIGHT[@FPS], e.g. 1280x720@30"),
    "remote_url": Rule("text", pattern=_SERVER_URL, what="http://HOST:PORT of a `holocap serve` (empty: all here)"),
    # `serve` and `--remote` tuning (flags only; the token is never saved: HOLOCAP_TOKEN)
    "port": Rule("number", lo=1, hi=65535, integer=True),
    "num_cpus": Rule("number", lo=1, hi=4096, integer=True),
    "replicas": Rule("number", lo=1, hi=1024, integer=True),  # or "auto" (see engine.remote.cli)
    "remote_timeout_s": Rule("number", lo=0.05, hi=600.0),
    "remote_quality": Rule("number", lo=10, hi=100, integer=True),
    "smoothing": Rule("flag"),
    "mirror": Rule("flag"),
    "show_hud": Rule("flag"),
    "virtual_camera": Rule("flag"),
    "event_mode": Rule("flag"),
}


def check(key: str, value: Any) -> str | None:
    """Why `value` cannot be used for setting `key`, or None (keys without a rule: any)."""
    rule = RULES.get(key)
    return None if rule is None else rule.problem(value)


def cli_type(key: str) -> Callable[[str], Any]:
    """An argparse `type=` that parses a flag's text and checks it against `key`'s rule;
    argparse prefixes the refusal (the value and what is allowed) with the flag's name."""
    rule = RULES[key]

    def parse(text: str) -> Any:
        value: Any = text
        if rule.kind == "number":
            try:
                value = int(text) if rule.integer else float(text)
            except ValueError:
                value = None
        problem = rule.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
        return value

    parse.__name__ = key  # argparse names the type in some messages
    return parse
