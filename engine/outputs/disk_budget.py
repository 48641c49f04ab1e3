"""A disk budget shared by every output of a long run: keep the newest files, warn at 90 %.

An event that runs all day must not fill the disk. Writers register each *finished* piece
(a closed video segment with its results lines or meshes) as one group of files; when the
registered total goes over the budget, the oldest groups are deleted until it fits again.
The piece being written is never touched, so what is on disk is always playable.

What is being written counts too: each open piece is estimated as large as the largest
finished one (the reserve), and files that only grow and are never deleted (a recording's
frames.jsonl) are `track`ed at their current size, so the total on disk stays within the
budget, not just the finished part.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

WARN_FRACTION = 0.9


@dataclass(frozen=True)
class _Group:
    label: str
    paths: tuple[Path, ...]
    nbytes: int


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class DiskBudget:
    """limit_bytes: the most the registered files may take together (None: no limit, only
    counted). Thread-safe: the headless writer and the recorder's thread both register."""

    def __init__(self, limit_bytes: int | None) -> None:
        if limit_bytes is not None and limit_bytes <= 0:
            raise ValueError(f"disk budget must be positive, got {limit_bytes} bytes")
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self.deleted_groups = 0
        self.deleted_bytes = 0
        self._groups: deque[_Group] = deque()
        self._tracked: list[Path] = []
        self._largest = 0
        self._open_writers = 2  # the overlay segment and the recorder's segment
        self._lock = threading.Lock()
        self._warned = False

    def track(self, path: Path | str) -> None:
        """A file that grows for the whole run and is never deleted; its size counts."""
        with self._lock:
            self._tracked.append(Path(path))

    def _committed(self) -> int:
        tracked = sum(_size(p) for p in self._tracked)
        return self.used_bytes + tracked + self._open_writers * self._largest

    def register(self, label: str, paths: Iterable[Path | str]) -> None:
        """Files that are complete and may be deleted, oldest registered first."""
        group_paths = tuple(Path(p) for p in paths)
        group = _Group(label, group_paths, sum(_size(p) for p in group_paths))
        with self._lock:
            self._groups.append(group)
            self.used_bytes += group.nbytes
            self._largest = max(self._largest, group.nbytes)
            self._enforce()

    def _enforce(self) -> None:
        if self.limit_bytes is None:
            return
        # Keep at least the newest group: an over-budget single segment is still the
        # newest recording there is.
        while self._committed() > self.limit_bytes and len(self._groups) > 1:
            old = self._groups.popleft()
            for path in old.paths:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    logger.warning("disk budget: could not delete %s: %s", path, exc)
            self.used_bytes -= old.nbytes
            self.deleted_groups += 1
            self.deleted_bytes += old.nbytes
            logger.info("disk budget: deleted %s (%.1f MB) to stay within %.2f GB",
                        old.label, old.nbytes / 1e6, self.limit_bytes / 1e9)
        committed = self._committed()
        if committed >= WARN_FRACTION * self.limit_bytes:
            if not self._warned:
                self._warned = True
                logger.warning("outputs use %.0f %% of the %.2f GB disk budget: the oldest segments "
                               "are deleted from now on", 100 * committed / self.limit_bytes,
                               self.limit_bytes / 1e9)
        elif committed < 0.8 * self.limit_bytes:
            self._warned = False

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            return {"limit_gb": None if self.limit_bytes is None else round(self.limit_bytes / 1e9, 3),
                    "used_gb": round(self.used_bytes / 1e9, 4), "deleted_segments": self.deleted_groups,
                    "deleted_gb": round(self.deleted_bytes / 1e9, 4)}
