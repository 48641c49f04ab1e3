"""Headless runs: a source through the stages into results.jsonl, summary.json and videos.

Over a file every frame is processed (lossless hand-over); over a camera the newest
frame wins, as in the GUI. Outputs (MJPEG, virtual camera, recorder) receive the same
overlay images the video gets.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.pipeline import FrameResult, Pipeline
from engine.render.overlay_cv import draw_frame_result, draw_hud, volume_strip
from engine.stage_protocol import Stage

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


class _ResultWriter:
    """The consumer: writes one JSON line and one overlay frame per FrameResult."""

    def __init__(self, options: HeadlessOptions, fps: float) -> None:
        from engine.outputs.video_writer import VideoWriter

        self.options = options
        self.fps = fps if fps and fps > 0 else 25.0
        self._jsonl = open(options.out_dir / "results.jsonl", "w", buffering=1)
        self._overlay = VideoWriter(options.out_dir / "overlay.mp4", self.fps) if options.write_overlay else None
        self._volume = None
        self._video_writer_cls = VideoWriter
        self.count = 0
        self.stage_hits: dict[str, int] = {}
        self.fit_rmse: dict[str, list[float]] = {}
        self.timings: dict[str, list[float]] = {}
        self.detections: dict[str, int] = {}
        self.last_volume = None

    def __call__(self, fr: FrameResult) -> None:
        self._jsonl.write(json.dumps(fr.to_json(), separators=(",", ":")) + "\n")
        for name, ms in fr.timings_ms.items():
            self.timings.setdefault(name, []).append(ms)
        for name, result in fr.results.items():
            if result is not None:
                self.stage_hits[name] = self.stage_hits.get(name, 0) + 1
                rmse = getattr(result, "fit_rmse_px", None)
                if rmse is not None and np.isfinite(rmse):
                    self.fit_rmse.setdefault(name, []).append(float(rmse))
        if self.options.export_meshes_dir is not None:
            export_frame_meshes(fr, self.options.export_meshes_dir)
        perception = fr.get("perception")
        if perception is not None:
            for key in ("face_landmarks", "pose_landmarks"):
                if getattr(perception, key) is not None:
                    self.detections[key] = self.detections.get(key, 0) + 1
        image = draw_frame_result(fr)
        draw_hud(image, [f"frame {fr.frame.index}"] +
                 [f"{k} {v:.1f} ms" for k, v in fr.timings_ms.items()])
        if self._overlay is not None:
            self._overlay.write(image)
        if self.options.outputs is not None:
            self.options.outputs.send(image, fr.frame.index, fr.frame.t_capture,
                                      results=fr.to_json(), meshes=result_meshes(fr))
        volume = fr.get("volume")
        if volume is not None:
            self.last_volume = volume
        if self.options.write_volume and volume is not None:
            strip = volume_strip(volume, 512)
            if strip is not None:
                if self._volume is None:
                    self._volume = self._video_writer_cls(self.options.out_dir / "volume.mp4", self.fps)
                self._volume.write(strip)
        self.count += 1

    def close(self) -> None:
        self._jsonl.close()
        if self.options.write_volume and self.last_volume is not None:
            write_volume_views(self.last_volume, self.options.out_dir)
        for writer in (self._overlay, self._volume):
            if writer is not None:
                writer.close()


def write_volume_views(volume, out_dir: Path) -> None:
    """The last frame's novel views as PNGs: volume_yaw<deg>.png (colour | normals)."""
    import cv2

    for yaw, colour, normal in zip(volume.yaw_deg, volume.color, volume.normal):
        name = f"volume_yaw{int(round(float(yaw))):+d}.png"
        cv2.imwrite(str(out_dir / name), np.concatenate([colour, normal], axis=1))


def export_frame_meshes(fr: FrameResult, out_dir: Path) -> None:
    """Write this frame's face and body meshes as .ply files (metres, y up) into out_dir."""
    face, body = fr.get("face"), fr.get("body")
    if face is None and body is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    if face is not None:
        from engine.face.export import export_face_mesh, export_name as face_name

        export_face_mesh(face, out_dir / face_name(fr.frame.index, face.backend, ".ply"))
    if body is not None:
        from engine.body.export import export_mesh, export_name as body_name

        export_mesh(body, out_dir / body_name(fr.frame.index, body.backend, ".ply"))


def result_meshes(fr: FrameResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Face and body meshes of a frame for the recorder: name -> (vertices, faces)."""
    meshes = {}
    face, body = fr.get("face"), fr.get("body")
    if face is not None:
        meshes["face"] = (face.vertices_camera, face.triangles)
    if body is not None:
        meshes["body"] = (body.vertices, body.faces)
    return meshes


def _progress_bar(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", dynamic_ncols=True, leave=True)


def run_headless(source: Any, stages: Sequence[Stage], options: HeadlessOptions) -> dict[str, Any]:
    """Process `source` through `stages`; returns (and writes) the summary."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    if options.outputs is not None:
        options.outputs.start()  # raises VirtualCameraUnavailable / OSError with a clear message
    info = source.info() if hasattr(source, "info") else {}
    fps = float(getattr(source, "nominal_fps", 0.0) or 0.0)
    writer = _ResultWriter(options, fps)
    live = bool(getattr(source, "is_live", False))
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
    interrupted = False
    pipeline.start()
    try:
        while not pipeline.wait(0.1):
            if options.max_frames is not None and done["n"] >= options.max_frames:
                break
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted: finishing the files written so far")
    finally:
        pipeline.close()
        if not pipeline.join(timeout=60.0):
            log.warning("a stage is still busy after 60 s; exiting anyway")
        wall = time.monotonic() - t0
        if bar is not None:
            bar.close()
        writer.close()
        if options.outputs is not None:
            options.outputs.close()
    stats = pipeline.stats()
    # Throughput from the first processed frame to the last: the first frame's wait for
    # models and caches to warm up is reported as first_frame_s, loading as load_s.
    t_first = done["t_first"]
    span = (done["t_last"] - t_first) if t_first is not None and writer.count > 1 else 0.0
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
    }
    (options.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
