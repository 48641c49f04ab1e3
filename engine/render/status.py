"""What the renderer reads of a FrameResult, and how it names a missing stage result.
No GL here, so it can be used and tested anywhere."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Protocol

from engine.frame import Frame

# What the placeholder says when a stage ran but returned None.
_NOT_FOUND = MappingProxyType({"perception": "no person found", "face": "no face found",
                               "body": "no body found", "volume": "no volume result"})


class FrameResultLike(Protocol):
    """What the renderer reads of engine.pipeline.FrameResult."""

    frame: Frame
    results: Mapping[str, Any]
    timings_ms: Mapping[str, float]
    errors: Mapping[str, str]


def stage_placeholder(frame_result: FrameResultLike, stage: str) -> str | None:
    """Why `stage` has nothing to draw ("face stage off", "no body found", "volume stage
    failed"), or None when it has a result."""
    if stage in frame_result.errors:
        return f"{stage} stage failed"
    if stage not in frame_result.results:
        return f"{stage} stage off"
    if frame_result.results[stage] is None:
        return _NOT_FOUND.get(stage, f"no {stage} result")
    return None
