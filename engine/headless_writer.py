"""What a headless run writes per frame: results.jsonl, overlay.mp4, volume.mp4, meshes and
the live outputs, each one a *sink* that fails alone.

A sink that raises (a full disk, a codec refusal, a bug) is logged once with its cause and
disabled; the other sinks and the pipeline go on, and `errors` tells the summary and the
exit status what failed. Runs without an end (--loop, a camera) cut their files into
segments of `segment_s` seconds (results_NNNNNN.jsonl with overlay_NNNNNN.mp4, the one being
written named .partial.mp4), each playable once closed, and honour a `DiskBudget`.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.frame_result import FrameResult
from engine.outputs.base import DELIVERY_ERRORS
from engine.outputs.disk_budget import DiskBudget
from engine.outputs.video_writer import VideoWriter
from engine.render.overlay_cv import draw_frame_result, draw_hud, volume_strip
from engine.stage_protocol import dumps_json

log = logging.getLogger(__name__)

# The PNG novel views are drawn at this size (the volume strip in volume.mp4 at half of it):
# the app's crisp outline, not the lattice's pixels.
VOLUME_VIEW_PX = 512


@dataclass
class WriterOptions:
    """out_dir: the run's folder. outputs: an OutputGroup (MJPEG, virtual camera, recorder) or
    None. segment_s: cut files into segments of this many seconds (None: one file each).
    budget: shared with the recorder; finished segments are registered with it."""

    out_dir: Path
    outputs: Any = None
    write_overlay: bool = True
    write_volume: bool = True
    export_meshes_dir: Path | None = None
    segment_s: float | None = None
    budget: DiskBudget | None = None


@dataclass
class _Segment:
    """The files of one segment (or of the whole run when not segmenting)."""

    index: int
    t0: float
    jsonl: Any
    jsonl_path: Path
    overlay: VideoWriter | None = None
    volume: VideoWriter | None = None


class ResultWriter:
    """The headless run's consumer: call it with each FrameResult, then `close()`."""

    def __init__(self, options: WriterOptions, fps: float) -> None:
        self.options = options
        self.fps = fps if fps and fps > 0 else 25.0
        self.errors: dict[str, str] = {}  # sink name -> cause; that sink is disabled
        self.count = 0
        self.stage_hits: dict[str, int] = {}
        self.fit_rmse: dict[str, list[float]] = {}
        self.timings: dict[str, list[float]] = {}
        self.detections: dict[str, int] = {}
        self.last_volume = None
        self.segments_written = 0
        self._segment = self._open_segment(0)

    # -- naming ---------------------------------------------------------------------------
    def _name(self, stem: str, ext: str, index: int, partial: bool = False) -> Path:
        if self.options.segment_s is None:
            return self.options.out_dir / f"{stem}{ext}"
        return self.options.out_dir / f"{stem}_{index:06d}{'.partial' if partial else ''}{ext}"

    def _open_segment(self, index: int) -> _Segment:
        path = self._name("results", ".jsonl", index)
        return _Segment(index, time.monotonic(), open(path, "w", buffering=1), path)

    # -- per frame --------------------------------------------------------------------------
    def __call__(self, fr: FrameResult) -> None:
        segment_s = self.options.segment_s
        if segment_s is not None and time.monotonic() - self._segment.t0 >= segment_s:
            self._guard("segments", self._rotate)
        self._count(fr)
        row = fr.to_json()  # once per frame: the JSON file and the recorder share it
        self._guard("results.jsonl", self._write_json, row)
        if self.options.export_meshes_dir is not None:
            self._guard("meshes", export_frame_meshes, fr, self.options.export_meshes_dir)
        image = None
        if self.options.write_overlay or self.options.outputs is not None:
            image = draw_frame_result(fr)
            draw_hud(image, [f"frame {fr.frame.index}"] + [f"{k} {v:.1f} ms" for k, v in fr.timings_ms.items()])
        if self.options.write_overlay:
            self._guard("overlay.mp4", self._write_overlay, image)
        if self.options.outputs is not None:
            self._guard("outputs", self.options.outputs.send, image, fr.frame.index, fr.frame.t_capture,
                        results=row, meshes=result_meshes(fr))
        volume = fr.get("volume")
        if volume is not None:
            self.last_volume = volume
            if self.options.write_volume:
                self._guard("volume.mp4", self._write_volume, volume)
        self.count += 1

    def _count(self, fr: FrameResult) -> None:
        for name, ms in fr.timings_ms.items():
            self.timings.setdefault(name, []).append(ms)
        for name, result in fr.results.items():
            if result is not None:
                self.stage_hits[name] = self.stage_hits.get(name, 0) + 1
                rmse = getattr(result, "fit_rmse_px", None)
                if rmse is not None and np.isfinite(rmse):
                    self.fit_rmse.setdefault(name, []).append(float(rmse))
        perception = fr.get("perception")
        if perception is not None:
            for key in ("face_landmarks", "pose_landmarks"):
                if getattr(perception, key) is not None:
                    self.detections[key] = self.detections.get(key, 0) + 1

    def _write_json(self, row: dict[str, Any]) -> None:
        self._segment.jsonl.write(dumps_json(row) + "\n")

    def _write_overlay(self, image: np.ndarray) -> None:
        seg = self._segment
        if seg.overlay is None:
            seg.overlay = VideoWriter(self._name("overlay", ".mp4", seg.index, partial=True), self.fps)
        seg.overlay.write(image)

    def _write_volume(self, volume: Any) -> None:
        strip = volume_strip(volume, 512)
        if strip is None:
            return
        seg = self._segment
        if seg.volume is None:
            seg.volume = VideoWriter(self._name("volume", ".mp4", seg.index, partial=True), self.fps)
        seg.volume.write(strip)

    def _guard(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run one sink's step; on failure log once, disable that sink, go on."""
        if name in self.errors:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            expected = isinstance(exc, DELIVERY_ERRORS)
            log.error("%s failed and is disabled for the rest of the run: %s", name, self.errors[name],
                      exc_info=not expected)

    # -- segments -----------------------------------------------------------------------
    def _finish_segment(self, seg: _Segment) -> list[Path]:
        """Close a segment's files (renaming .partial videos); returns its finished files."""
        files = []
        seg.jsonl.close()
        files.append(seg.jsonl_path)
        for stem, writer in (("overlay", seg.overlay), ("volume", seg.volume)):
            if writer is None:
                continue
            try:
                writer.close()
            except Exception as exc:
                self.errors.setdefault(f"{stem}.mp4", f"{type(exc).__name__} on close: {exc}")
                log.error("%s: could not finish %s: %s", stem, writer.path, exc)
                continue
            if writer.frames_written == 0:
                continue  # it failed to open: there is no video to list
            final = self._name(stem, ".mp4", seg.index)
            if writer.path != final:
                os.replace(writer.path, final)
            files.append(final)
        return files

    def _rotate(self) -> None:
        old = self._segment
        self._segment = self._open_segment(old.index + 1)
        files = self._finish_segment(old)
        self.segments_written += 1
        log.info("segment %d finished: %s", old.index, ", ".join(p.name for p in files))
        if self.options.budget is not None:
            self.options.budget.register(f"segment {old.index}", files)

    def close(self) -> list[str]:
        """Finish every file; returns the names written (relative to out_dir)."""
        files = self._finish_segment(self._segment)
        self.segments_written += 1
        if self.options.write_volume and self.last_volume is not None:
            try:
                files += write_volume_views(self.last_volume, self.options.out_dir)
            except Exception as exc:
                self.errors["volume views"] = f"{type(exc).__name__}: {exc}"
                log.error("volume views failed: %s", exc)
        out = self.options.out_dir
        names = sorted({p.name for p in out.iterdir() if p.is_file() and ".partial" not in p.name
                        and p.suffix in (".jsonl", ".mp4", ".png")})
        return names if self.options.segment_s is not None else sorted({p.name for p in files})


def write_volume_views(volume: Any, out_dir: Path, size: int = VOLUME_VIEW_PX) -> list[Path]:
    """The last frame's novel views as PNGs: volume_yaw<deg>.png (colour | normals), each
    drawn at size x size as the app draws it (engine.render.volume_image)."""
    import cv2

    from engine.render.volume_image import volume_images

    written = []
    for index, yaw in enumerate(volume.yaw_deg):
        path = out_dir / f"volume_yaw{int(round(float(yaw))):+d}.png"
        colour, normal = volume_images(volume, index, size)
        if not cv2.imwrite(str(path), np.concatenate([colour, normal], axis=1)):
            raise OSError(f"could not write {path}")
        written.append(path)
    return written


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


def result_meshes(fr: FrameResult) -> dict[str, tuple[np.ndarray, ...]]:
    """Face and body meshes of a frame for the recorder: name -> (vertices, faces[, colours])."""
    meshes = {}
    for name, vertices, faces, result in (("face", "vertices_camera", "triangles", fr.get("face")),
                                          ("body", "vertices", "faces", fr.get("body"))):
        if result is None:
            continue
        mesh = (getattr(result, vertices), getattr(result, faces))
        colours = getattr(result, "vertex_colours", None)
        meshes[name] = mesh + (colours,) if colours is not None else mesh
    return meshes
