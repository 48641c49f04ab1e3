"""Reading a recording back (see engine/outputs/recorder.py for the layout), also after a crash.

`read_recording(folder)` keeps the frames whose video segment is complete and whose
frames.jsonl line is whole; it reports how many lines pointed at lost video.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import cv2
import numpy as np

from engine.outputs.ply import read_ply, read_ply_with_colours
from engine.outputs.recorder import FRAMES_FILE, META_FILE, VIDEO_DIR

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedFrame:
    """One frame of a recording. t: seconds (the source's time.monotonic at capture).
    segment/segment_frame: where its image is in the video. size: (width, height) of the
    image as sent (segments may be padded to even sizes). meshes: name -> file path.
    results: the JSON written for the frame, or None."""

    frame_index: int
    t: float
    segment: int
    segment_frame: int
    size: tuple[int, int]
    meshes: Mapping[str, Path] = field(default_factory=dict)
    results: Any = None


@dataclass(frozen=True)
class Recording:
    """directory: the folder. meta: recording.json. frames: the readable frames, in order.
    segments: segment number -> its complete video file. lost_frames: lines whose video was
    lost (segment unfinished at a crash). complete: closed cleanly."""

    directory: Path
    meta: Mapping[str, Any]
    frames: tuple[RecordedFrame, ...]
    segments: Mapping[int, Path]
    lost_frames: int

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    def images(self) -> Iterator[tuple[RecordedFrame, np.ndarray]]:
        """Decode the frames' images in order: yields (frame, (H, W, 3) uint8 BGR)."""
        by_segment: dict[int, list[RecordedFrame]] = {}
        for frame in self.frames:
            by_segment.setdefault(frame.segment, []).append(frame)
        for segment, frames in sorted(by_segment.items()):
            wanted = {f.segment_frame: f for f in frames}
            cap = cv2.VideoCapture(str(self.segments[segment]))
            try:
                for i in range(max(wanted) + 1):
                    ok, image = cap.read()
                    if not ok:
                        raise ValueError(f"{self.segments[segment]}: could not decode frame {i}")
                    if i in wanted:
                        w, h = wanted[i].size
                        yield wanted[i], image[:h, :w]
            finally:
                cap.release()

    def mesh(self, frame: RecordedFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(vertices (V, 3) float32, faces (F, 3) int32) of mesh `name` at `frame`."""
        return read_ply(frame.meshes[name])

    def mesh_colours(self, frame: RecordedFrame, name: str) -> np.ndarray | None:
        """(V, 3) uint8 BGR vertex colours of mesh `name` at `frame` (None if it has none)."""
        return read_ply_with_colours(frame.meshes[name])[2]


def _segment_frame_counts(video_dir: Path) -> dict[int, tuple[Path, int]]:
    """segment number -> (file, frame count) for every segment file OpenCV can open.

    A segment killed before its rename is still tried: it is readable when the kill came
    after the mp4 index was written."""
    found: dict[int, tuple[Path, int]] = {}
    for path in sorted(video_dir.glob("segment_*.mp4")):
        try:
            number = int(path.name.split("_")[1].split(".")[0])
        except (IndexError, ValueError):
            logger.warning("ignoring unexpected file %s", path)
            continue
        if number in found:
            continue  # both names exist: the final one (sorted first) wins
        cap = cv2.VideoCapture(str(path))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        cap.release()
        if count > 0:
            found[number] = (path, count)
        else:
            logger.info("%s is unreadable (unfinished when the recording stopped)", path.name)
    return found


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """The whole JSON lines of frames.jsonl; a cut last line (killed mid-write) is skipped."""
    lines = []
    if not path.exists():
        return lines
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                logger.info("%s line %d is cut (the recording was killed while writing it)", path.name, number)
                break
    return lines


def read_recording(directory: Path | str) -> Recording:
    """Read a recording folder; works on folders of crashed recordings too."""
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{directory} is not a holocap recording (no {META_FILE})")
    meta = json.loads(meta_path.read_text())
    segments = _segment_frame_counts(directory / VIDEO_DIR)
    frames, lost = [], 0
    for line in _read_lines(directory / FRAMES_FILE):
        seg = segments.get(line["segment"])
        if seg is None or line["segment_frame"] >= seg[1]:
            lost += 1
            continue
        frames.append(RecordedFrame(
            frame_index=int(line["frame_index"]), t=float(line["t"]), segment=int(line["segment"]),
            segment_frame=int(line["segment_frame"]), size=(int(line["size"][0]), int(line["size"][1])),
            meshes={k: directory / v for k, v in line.get("meshes", {}).items()},
            results=line.get("results")))
    return Recording(directory, meta, tuple(frames), {k: v[0] for k, v in segments.items()}, lost)

