"""Headless runs: a source through the stages into results.jsonl, summary.json and videos.

Over a file every frame is processed (lossless hand-over, the recorder included); over a
camera the newest frame wins, as in the GUI. Outputs (MJPEG, virtual camera, recorder)
receive the same overlay images the video gets. A stop signal (SIGINT, SIGTERM, SIGHUP)
ends the run like its end of file: every file finished, summary.json saying
`"interrupted": true` and which signal. What is written per frame, and how one failing
file leaves the others going, is in `engine.headless_writer`.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.headless_writer import ResultWriter, WriterOptions
from engine.outputs.disk_budget import DiskBudget
from engine.pipeline import FrameResult, Pipeline
from engine.signals import signal_name
from engine.stage_protocol import Stage, dumps_json

log = logging.getLogger(__name__)


@dataclass
class HeadlessOptions:
    out_dir: Path
    max_frames: int | None = None
    progress: bool = True
    outputs: Any = None  # engine.outputs.group.OutputGroup (MJPEG, virtual camera, recorder) or None
    write_overlay: bool = True
    write_volume: bool = True
    export_meshes_dir: Path | None = None  # per-frame face/body meshes (.ply) when set
    load_s: float | None = None  # model loading before the run, reported apart from its fps
    # Runs without an end (--loop, a camera) cut their files into segments of this length
    # and keep within the disk budget; runs over a file write one file each.
    segment_minutes: float = 10.0
    disk_budget_gb: float | None = 20.0


def _progress_bar(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, leave=True)


def run_headless(source: Any, stages: Sequence[Stage], options: HeadlessOptions) -> dict[str, Any]:
    """Process `source` through `stages`; returns (and writes) the summary."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    live = bool(getattr(source, "is_live", False))
    endless = live or bool(getattr(source, "loop", False)) or bool(getattr(source, "endless", False))
    budget = DiskBudget(None if options.disk_budget_gb is None else int(options.disk_budget_gb * 1e9))
    if options.outputs is not None:
        options.outputs.set_lossless(not live)
        for output in options.outputs:
            if hasattr(output, "budget"):
                output.budget = budget  # the recorder's finished segments count too
        options.outputs.start()  # raises VirtualCameraUnavailable / OSError with a clear message
    info = source.info() if hasattr(source, "info") else {}
    fps = float(getattr(source, "nominal_fps", 0.0) or 0.0)
    writer = ResultWriter(WriterOptions(
        out_dir=options.out_dir, outputs=options.outputs, write_overlay=options.write_overlay,
        write_volume=options.write_volume, export_meshes_dir=options.export_meshes_dir,
        segment_s=options.segment_minutes * 60.0 if endless else None, budget=budget), fps)
    pipeline = Pipeline(source, stages, lossless=not live)
    total = info.get("frame_count") if isinstance(info, dict) else None
    if options.max_frames is not None:
        total = min(total, options.max_frames) if total else options.max_frames
    bar = _progress_bar(total if isinstance(total, int) and total > 0 else None, options.progress)
    done: dict[str, Any] = {"n": 0, "t_first": None}

    def on_result(fr: FrameResult) -> None:
        if options.max_frames is not None and done["n"] >= options.max_frames:
            return
        if done["t_first"] is None:
            done["t_first"] = time.monotonic()
        writer(fr)
        done["n"] += 1
        done["t_last"] = time.monotonic()
        if bar is not None:
            bar.update(1)

    pipeline.add_consumer(on_result)
    t0 = time.monotonic()
    interrupted, signum = False, None
    pipeline.start()
    try:
        while not pipeline.wait(0.1):
            if options.max_frames is not None and done["n"] >= options.max_frames:
                break
    except KeyboardInterrupt as exc:
        interrupted = True
        signum = int(getattr(exc, "signum", signal.SIGINT))
        log.warning("interrupted by %s: finishing the files written so far", signal_name(signum))
    finally:
        pipeline.close()
        if not pipeline.join(timeout=60.0):
            log.warning("a stage is still busy after 60 s; exiting anyway")
        wall = time.monotonic() - t0
        if bar is not None:
            bar.close()
        files = writer.close()
        if options.outputs is not None:
            options.outputs.close()
    stats = pipeline.stats()
    output_errors = dict(writer.errors)
    if options.outputs is not None:
        output_errors.update(options.outputs.failures())
    # Throughput from the first processed frame to the last: the first frame's wait for
    # models and caches to warm up is reported as first_frame_s, loading as load_s.
    t_first = done["t_first"]
    span = (done["t_last"] - t_first) if t_first is not None and writer.count > 1 else 0.0
    if hasattr(source, "info"):
        info = source.info()  # at the end: skipped frames and files are known only now
    summary = {
        "source": getattr(source, "source_id", str(source)),
        "source_info": info,
        "stages": [s.name for s in stages],
        "frames_read": stats.frames_read,
        "frames_processed": writer.count,
        "frames_dropped": stats.frames_dropped,
        "wall_s": round(wall, 3),
        "fps": round((writer.count - 1) / span, 3) if span > 0 else 0.0,
        "load_s": None if options.load_s is None else round(options.load_s, 3),
        "first_frame_s": None if t_first is None else round(t_first - t0, 3),
        "steps": pipeline.steps,
        "stage_dropped": stats.stage_dropped,
        "median_ms": {k: round(float(np.median(v)), 3) for k, v in writer.timings.items()},
        "stage_errors": stats.stage_errors,
        "frames_with_result": writer.stage_hits,
        "frames_with_detection": writer.detections,
        "median_fit_rmse_px": {k: round(float(np.median(v)), 3) for k, v in writer.fit_rmse.items()},
        "p95_fit_rmse_px": {k: round(float(np.percentile(v, 95)), 3) for k, v in writer.fit_rmse.items()},
        "source_error": stats.source_error,
        "interrupted": interrupted,
        "signal": None if signum is None else signal_name(signum),
        "signal_number": signum,
        "output_errors": output_errors,
        "outputs": _output_stats(options.outputs),
        "segments": writer.segments_written if endless else None,
        "disk": budget.summary(),
        "files": files + ["summary.json"],
        **_remote_counts(stages, writer.count),
    }
    (options.out_dir / "summary.json").write_text(dumps_json(summary, indent=2))
    return summary


def _remote_counts(stages: Sequence[Stage], frames: int) -> dict[str, Any]:
    """Frames whose remote stages all ran on the server vs frames where one ran here (the
    server was away), and each remote stage's own account; zero remote without --remote."""
    remote = [s for s in stages if hasattr(s, "local_frames")]
    local: set[int] = set().union(*(s.local_frames for s in remote)) if remote else set()
    n_local = min(len(local), frames) if remote else frames
    return {"frames_remote": frames - n_local, "frames_local": n_local,
            "remote": {s.name: s.summary() for s in remote}}


def _output_stats(outputs: Any) -> dict[str, dict[str, Any]]:
    """received / delivered / dropped / failed per live output, for the summary."""
    if outputs is None:
        return {}
    stats = {}
    for output in outputs:
        s = getattr(output, "stats", None)
        if s is not None:
            stats[output.name] = {"received": s.received, "delivered": s.delivered,
                                  "dropped": s.dropped, "failed": s.failed}
    return stats
