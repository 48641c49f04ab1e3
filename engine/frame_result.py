"""What the pipeline hands to its consumers: one frame with each stage's result, and the
pipeline's running statistics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.frame import Frame
from engine.stage_protocol import Result


@dataclass
class FrameResult:
    """One frame with what each stage made of it.

    results: stage name -> Result, or None when the stage found nothing or failed.
    timings_ms: stage name -> wall milliseconds spent in its process().
    errors: stage name -> one-line error, for stages that raised on this frame.
    result_frames: stage name -> index of the frame that stage's result was made from, for
        results carried over from an earlier frame (live runs: the volume runs at its own
        rate and each published frame carries its newest result). Absent = this frame.
    t_done: time.monotonic() when the frame's last (per-frame) stage finished.
    """

    frame: Frame
    results: dict[str, Result | None] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    result_frames: dict[str, int] = field(default_factory=dict)
    t_done: float = 0.0

    def get(self, stage: str) -> Any:
        return self.results.get(stage)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frame": self.frame.index,
            # Which input this row is about: the file name in an image folder (rows of
            # unrelated photos must be traceable to their photo), else the frame index.
            "source_name": self.frame.name or self.frame.index,
            "t": round(self.frame.t_capture, 6),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
        for name, result in self.results.items():
            out[name] = None if result is None else result.to_json()
        if self.errors:
            out["errors"] = dict(self.errors)
        if self.result_frames:
            out["result_frames"] = dict(self.result_frames)
        return out


@dataclass(frozen=True)
class PipelineStats:
    """frames_dropped: frames read that never reached the consumers (replaced while waiting
    for a per-frame stage). stage_dropped: per stage, frames it never saw (for a background
    stage: published frames it skipped to stay on the newest). stage_fps: results per second
    of each stage over the recent window. latency_ms: median capture -> published.
    stage_latency_ms: per stage, median capture -> that stage's result done.
    stage_results: per stage, results made so far (to measure rates over any span)."""

    frames_read: int
    frames_processed: int
    frames_dropped: int
    capture_fps: float
    process_fps: float
    stage_ms: dict[str, float]  # median over the recent window
    stage_errors: dict[str, int]
    latency_ms: float  # median capture -> all per-frame stages done, recent window
    running: bool
    source_error: str | None = None
    stage_fps: dict[str, float] = field(default_factory=dict)
    stage_dropped: dict[str, int] = field(default_factory=dict)
    stage_latency_ms: dict[str, float] = field(default_factory=dict)
    stage_results: dict[str, int] = field(default_factory=dict)  # results so far, per stage
    background: tuple[str, ...] = ()
