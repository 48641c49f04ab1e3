"""The unit that flows from a source through the pipeline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured image.

    image: (H, W, 3) uint8, BGR (OpenCV order), C-contiguous.
    index: running index from the source, starting at 0; gaps mean dropped frames.
    t_capture: time.monotonic() seconds when the source produced the image.
    source_id: identifies the source (camera name, file path, "synthetic:...").
    name: what this frame is within its source when that is more than its index: the image's
        file name for photos and image folders; "" otherwise.
    t_media: seconds on the source's own timeline (files: index / the playback rate), or
        None for live sources. Temporal filters follow `t_filter`, so a run over a file gives
        the same results however fast it was processed (or on which machine).
    """

    image: np.ndarray
    index: int
    t_capture: float
    source_id: str
    name: str = ""
    t_media: float | None = None

    @property
    def t_filter(self) -> float:
        """The time temporal filters and trackers follow: the file's timeline, else capture time."""
        return self.t_capture if self.t_media is None else self.t_media

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
