"""Atomic file writes: a reader (or a crash) sees the old file or the whole new one, never part."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write `data` to `path` through a temp file in the same folder and os.replace.

    fsync: also flush to the disk before the rename (survives power loss, not just a killed
    process; slower). Parent folders are created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave no temp file behind, then let the error (or interrupt) go on.
        Path(tmp).unlink(missing_ok=True)
        raise
