"""Recording the clean rendered view, per-frame results and meshes, so that killing the app
at any moment (SIGKILL, power cut of the process) leaves readable files.

Layout of a recording folder:
  recording.json               settings and start time; rewritten with "complete": true on close
  video/segment_000000.mp4     self-contained mp4v segments of about `segment_s` seconds each;
                               the one being written is named segment_NNNNNN.partial.mp4 and
                               renamed when complete (an unfinished mp4 has no index: it is lost)
  frames.jsonl                 one JSON line per recorded frame, appended unbuffered once the
                               frame's meshes are on disk and its image went to the encoder
                               (a line is trusted only when its segment is complete)
  meshes/<name>_<frame>.ply    per-frame meshes, written atomically (temp file + rename)

`read_recording(folder)` returns the frames that can be read back: those whose segment is
complete. A crash loses at most the segment being written (≤ segment_s seconds of video).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from engine.outputs.atomic import atomic_write_bytes
from engine.outputs.base import OutputItem, ThreadedOutput
from engine.outputs.ply import ply_bytes
from engine.outputs.video_writer import VideoWriter
from engine.stage_protocol import jsonable

logger = logging.getLogger(__name__)

FORMAT = "holocap-recording"
VERSION = 1
META_FILE = "recording.json"
FRAMES_FILE = "frames.jsonl"
VIDEO_DIR = "video"
MESH_DIR = "meshes"

# A mesh given to the recorder: (vertices (V, 3) float, faces (F, 3) int).
Mesh = tuple[np.ndarray, ...]  # (vertices, faces) or (vertices, faces, colours BGR)


def segment_name(segment: int, partial: bool = False) -> str:
    return f"segment_{segment:06d}{'.partial' if partial else ''}.mp4"


def mesh_name(name: str, frame_index: int) -> str:
    return f"{name}_{frame_index:06d}.ply"


def write_all(raw_file: Any, data: bytes) -> None:
    """Write all of `data` to an unbuffered file (a raw write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[raw_file.write(view):]


def new_recording_dir(parent: Path | str, prefix: str = "recording") -> Path:
    """A fresh, not yet existing folder name under `parent`: <prefix>_YYYYmmdd_HHMMSS[_n]."""
    parent = Path(parent)
    stem = f"{prefix}_{_dt.datetime.now().strftime('%Y%m%d_%H%M%S')}"
    path, n = parent / stem, 1
    while path.exists():
        path, n = parent / f"{stem}_{n}", n + 1
    return path


@dataclass(frozen=True)
class RecorderSettings:
    """segment_s: seconds (wall clock) per video segment, the most a crash can lose.
    fps: frame rate stored in the video files (true timing is in frames.jsonl).
    mesh_every: write meshes every N-th recorded frame (0: never); results decimals: rounding
    of floats in frames.jsonl."""

    segment_s: float = 5.0
    fps: float = 30.0
    fourcc: str = "mp4v"
    mesh_every: int = 1
    decimals: int = 4


class Recorder(ThreadedOutput):
    """The recording output. `send(image, frame_index, t, results=..., meshes=...)`:
    results is anything `engine.stage_protocol.jsonable` accepts (or has `to_json()`), meshes maps a
    name ("face", "body", "volume") to (vertices (V, 3), faces (F, 3)). The folder must not
    hold a recording already."""

    name = "recorder"
    wants_results = True  # OutputGroup passes results= and meshes= to send
    records = True  # a recording wants every frame of a file run (OutputGroup.set_lossless)

    def __init__(self, directory: Path | str, settings: RecorderSettings = RecorderSettings()) -> None:
        super().__init__()
        if settings.segment_s <= 0:
            raise ValueError(f"segment_s must be positive, got {settings.segment_s}")
        self.directory = Path(directory)
        self.settings = settings
        self.frames_recorded = 0
        self._frames_file: Any = None  # unbuffered binary file of frames.jsonl
        self._writer: VideoWriter | None = None
        self._segment = -1
        self._segment_t0 = 0.0
        self._segment_meshes: list[Path] = []
        self._created = ""
        # A DiskBudget shared with the run's other files (set before start); finished
        # segments and their meshes are registered with it, the oldest deleted over budget.
        self.budget: Any = None

    def send(self, image_bgr: np.ndarray, frame_index: int, t: float, *,
             results: Any = None, meshes: Mapping[str, Mesh] | None = None) -> None:
        self._put(image_bgr, frame_index, t, {"results": results, "meshes": dict(meshes or {})})

    # -- ThreadedOutput hooks ------------------------------------------------------------
    def _open(self) -> None:
        if (self.directory / FRAMES_FILE).exists():
            raise FileExistsError(f"{self.directory} already holds a recording; choose a new folder")
        (self.directory / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
        (self.directory / MESH_DIR).mkdir(exist_ok=True)
        self._created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._write_meta(complete=False)
        # Unbuffered: each frame's line reaches the OS in one write() call.
        self._frames_file = open(self.directory / FRAMES_FILE, "ab", buffering=0)
        if self.budget is not None:
            self.budget.track(self.directory / FRAMES_FILE)
        logger.info("recording to %s", self.directory)

    def _deliver(self, item: OutputItem) -> None:
        now = time.monotonic()
        if self._writer is None or now - self._segment_t0 >= self.settings.segment_s:
            self._next_segment(now)
        h, w = item.image.shape[:2]
        if self._writer.size is not None and self._writer.size[:2] != (w + (w & 1), h + (h & 1)):
            self._next_segment(now)  # the view was resized: segments have one size each
        meshes = self._write_meshes(item)
        segment_frame = self._writer.frames_written
        self._writer.write(item.image)
        line = {"frame_index": item.frame_index, "t": round(item.t, 6), "segment": self._segment,
                "segment_frame": segment_frame, "size": [w, h], "meshes": meshes,
                "results": self._results_json(item.extras.get("results"))}
        write_all(self._frames_file, (json.dumps(line, separators=(",", ":")) + "\n").encode())
        self.frames_recorded += 1

    def _release(self) -> None:
        self._finish_segment()
        if self._frames_file is not None:
            self._frames_file.close()
            self._frames_file = None
            self._write_meta(complete=True)
            logger.info("recording finished: %s (%d frames, %d dropped)", self.directory,
                        self.frames_recorded, self.stats.dropped)

    # -- helpers -------------------------------------------------------------------------
    def _next_segment(self, now: float) -> None:
        self._finish_segment()
        self._segment += 1
        self._segment_t0 = now
        path = self.directory / VIDEO_DIR / segment_name(self._segment, partial=True)
        # No canvas cap: read_recording crops each frame back to the size it was sent at.
        self._writer = VideoWriter(path, self.settings.fps, self.settings.fourcc, max_side=None)

    def _finish_segment(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        files = list(self._segment_meshes)
        if self._writer.frames_written:
            final = self.directory / VIDEO_DIR / segment_name(self._segment)
            os.replace(self._writer.path, final)
            files.append(final)
        self._writer = None
        self._segment_meshes = []
        if self.budget is not None and files:
            self.budget.register(f"recording segment {self._segment}", files)

    def _write_meshes(self, item: OutputItem) -> dict[str, str]:
        every = self.settings.mesh_every
        meshes: Mapping[str, Mesh] = item.extras.get("meshes") or {}
        if not meshes or every <= 0 or self.frames_recorded % every:
            return {}
        written = {}
        for name, mesh in meshes.items():
            rel = f"{MESH_DIR}/{mesh_name(name, item.frame_index)}"
            colours = mesh[2] if len(mesh) > 2 else None
            atomic_write_bytes(self.directory / rel, ply_bytes(mesh[0], mesh[1], colours))
            self._segment_meshes.append(self.directory / rel)
            written[name] = rel
        return written

    def _results_json(self, results: Any) -> Any:
        if results is None:
            return None
        if hasattr(results, "to_json"):
            results = results.to_json()
        return jsonable(results, self.settings.decimals)

    def _write_meta(self, complete: bool) -> None:
        s = self.settings
        meta = {"format": FORMAT, "version": VERSION, "created": self._created, "complete": complete,
                "fps": s.fps, "segment_s": s.segment_s, "fourcc": s.fourcc,
                "frames": self.frames_recorded, "dropped": self.stats.dropped}
        atomic_write_bytes(self.directory / META_FILE, (json.dumps(meta, indent=1) + "\n").encode())
