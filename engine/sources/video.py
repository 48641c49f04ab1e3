"""A video file as a source (OpenCV/FFmpeg), ending cleanly or looping on request.

`realtime=True` paces frames to the file's rate (the GUI), `realtime=False` delivers them
as fast as they are read (headless runs, tests); t_capture is always time.monotonic()
at delivery, t_media the frame's place on the playback timeline (index / rate).
"""
from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.frame import Frame
from engine.sources.base import Pacer, release_frame
from engine.sources.convert import to_bgr8
from engine.sources.errors import SourceError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
    ".gif", ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".mjpeg", ".mjpg", ".y4m",
})
DEFAULT_FPS = 30.0  # used when the container does not state a usable rate


def check_readable_file(path: Path, what: str) -> None:
    """Raise SourceError unless `path` is an existing, readable, non-empty regular file."""
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if not path.is_file():
        raise SourceError(f"not a {what} file: {path}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {what} file (permission denied): {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"{what} file is empty (0 bytes): {path}")


class VideoSource:
    """Frames of a video file in order.

    loop: rewind at the end instead of ending (read() then never returns None until closed).
    realtime: pace delivery to the file's frame rate.
    pace_fps: play at this rate instead of the file's (re-timing a 25 fps clip to a 30 fps
        camera's, e.g. for the app benchmark); nominal_fps then reports it.
    """

    def __init__(self, path: str | Path, *, loop: bool = False, realtime: bool = False,
                 pace_fps: float | None = None) -> None:
        self._path = Path(path)
        self._pace_fps = pace_fps if pace_fps and math.isfinite(pace_fps) and pace_fps > 0 else None
        self._loop = loop
        self._realtime = realtime
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None
        self._fps = DEFAULT_FPS
        self._frame_count = 0
        self._index = 0
        self._loops = 0
        self._pass_position = 0  # frame positions consumed this pass: decoded + unreadable
        self._pass_decoded = 0  # frames decoded this pass
        # Unreadable [first, last] positions, of the first pass (a looping file repeats them);
        # skipped_frames counts every pass.
        self.skipped_ranges: list[tuple[int, int]] = []
        self.skipped_frames = 0
        self._pacer = Pacer(self._fps)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._noted = False

    @property
    def source_id(self) -> str:
        return str(self._path)

    @property
    def nominal_fps(self) -> float:
        return self._fps

    @property
    def is_live(self) -> bool:
        return False

    @property
    def loop(self) -> bool:
        return self._loop

    def open(self) -> None:
        check_readable_file(self._path, "video")
        cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video (corrupt or unsupported format): {self._path}")
        ok, image = cap.read()
        if not ok or image is None or image.size == 0:
            cap.release()
            raise SourceError(f"video has no decodable frames: {self._path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            log.info("video %s states no usable frame rate (%r); assuming %.0f fps", self._path, fps, DEFAULT_FPS)
            fps = DEFAULT_FPS
        if self._pace_fps is not None:
            log.info("video %s: played at %.3g fps instead of its own %.3g", self._path, self._pace_fps, fps)
            fps = self._pace_fps
        self._fps = fps
        self._frame_count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        self._cap, self._pending = cap, image
        self._index, self._loops, self._pass_position = 0, 0, 0
        self.skipped_ranges, self.skipped_frames, self._pass_decoded = [], 0, 0
        self._pacer = Pacer(fps)
        self._stop.clear()
        log.info("opened video %s: %dx%d, %.3g fps, %d frames", self._path, image.shape[1], image.shape[0],
                 fps, self._frame_count)

    def _rewind(self, cap: cv2.VideoCapture) -> np.ndarray | None:
        """First frame again; reopening is the fallback for containers that cannot seek."""
        if not cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            cap.release()
            cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
            self._cap = cap
        ok, image = cap.read()
        return image if ok else None

    def _grab(self) -> np.ndarray | None:
        cap = self._cap
        if cap is None:
            return None
        if self._pending is not None:
            image, self._pending = self._pending, None
            self._pass_position += 1
            self._pass_decoded += 1
            return image
        image = self._read_past_damage(cap)
        if image is not None:
            return image
        if not self._loop:
            log.info("video %s ended after %d frames", self._path, self._index)
            return None
        image = self._rewind(cap)
        if image is None:
            log.warning("video %s could not be rewound; ending", self._path)
            return None
        self._loops += 1
        self._pass_position, self._pass_decoded = 1, 1
        return image

    # Without a frame count, this many unreadable frames in a row are taken as the end.
    MAX_GAP_UNKNOWN_LENGTH = 250

    def _read_past_damage(self, cap: cv2.VideoCapture) -> np.ndarray | None:
        """The next decodable frame, skipping a damaged stretch; None at the real end.

        A failed read of FFmpeg's decoder consumes about one frame of the damaged stretch,
        so reading on until the container's frame count is used up reaches the frames after
        the damage (a corrupt middle is not the end of the video)."""
        first_bad = self._pass_position
        known = self._frame_count > 0
        while True:
            ok, image = cap.read()
            if ok and image is not None and image.size:
                if self._pass_position > first_bad:
                    self._note_skipped(first_bad, self._pass_position - 1)
                self._pass_position += 1
                self._pass_decoded += 1
                return image
            self._pass_position += 1
            gap = self._pass_position - first_bad
            if (known and self._pass_position >= self._frame_count) or \
                    (not known and gap >= self.MAX_GAP_UNKNOWN_LENGTH) or self._stop.is_set():
                break
        missing = self._frame_count - first_bad if known else 0
        # Container frame counts are often estimated (duration × fps) and off by a frame or
        # two; a shortfall beyond that is a truncated or damaged end.
        if missing > max(2, self._frame_count // 100):
            self.skipped_frames += missing
            if self._loops == 0:
                log.warning("video %s is truncated or damaged at its end: frames %d-%d of %d unreadable "
                            "(%d decoded)", self._path, first_bad, self._frame_count - 1, self._frame_count,
                            self._pass_decoded)
                self.skipped_ranges.append((first_bad, self._frame_count - 1))
        return None

    def _note_skipped(self, first: int, last: int) -> None:
        self.skipped_frames += last - first + 1
        if self._loops == 0:  # later loops skip the same stretch: said once
            self.skipped_ranges.append((first, last))
            log.warning("video %s: frames %d-%d are damaged and unreadable; skipped %d frames and went on",
                        self._path, first, last, last - first + 1)

    def read(self) -> Frame | None:
        with self._lock:
            if self._stop.is_set():
                return None
            image = self._grab()
        if image is None:
            return None
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            image, notes = to_bgr8(image)
            if notes and not self._noted:
                self._noted = True
                log.info("video %s: %s", self._path, ", ".join(notes))
        frame = release_frame(np.ascontiguousarray(image), self._index, self.source_id,
                              self._pacer if self._realtime else None, self._stop,
                              period_s=self._pacer.period)
        if frame is not None:
            self._index += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        with self._lock:  # waits for a read in progress (bounded by one decode)
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            self._pending = None

    def info(self) -> dict[str, Any]:
        return {"kind": "video", "path": str(self._path), "fps": self._fps, "frame_count": self._frame_count,
                "position": self._index, "loops": self._loops, "loop": self._loop, "realtime": self._realtime,
                "skipped_frames": self.skipped_frames, "skipped_ranges": [list(r) for r in self.skipped_ranges]}


def count_decodable_frames(path: str | Path) -> int:
    """How many frames OpenCV can decode from a video when it reads on past unreadable ones
    (the frames a player or our source gets, not the header's count; 0 for a file it cannot
    open). Reading stops a few attempts past the container's frame count, or after 250
    failures in a row when the count is unknown."""
    cap = cv2.VideoCapture(str(path))
    total = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    count = attempts = misses = 0
    try:
        while cap.isOpened():
            attempts += 1
            if cap.read()[0]:
                count, misses = count + 1, 0
            else:
                misses += 1
            if misses and ((total and attempts >= total + 5) or misses >= 250):
                break
    finally:
        cap.release()
    return count
