"""Sources and weights benchmark: how fast frames come out of each source kind (unpaced,
decode cost only) and how fast installed weights are hashed (start-up verification cost).

Rows: per-frame median / p90 ms and frames per second for the shared clips
(talking_head.mp4 410x412 H.264, street_people.avi 1280x720), the COCO photos as a folder,
the synthetic pattern at 640x480 and 1280x720; sha256 throughput in MB/s on a temp file.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from engine.bench import BenchOptions, peak_rss_mb
from engine.sources.base import Source
from engine.sources.images import ImageSource
from engine.sources.synthetic import SyntheticSource
from engine.sources.video import VideoSource
from engine.weights.store import sha256_file


def _time_reads(source: Source, limit: int) -> list[float]:
    """Milliseconds per read() for up to `limit` frames (the source is opened and closed here)."""
    source.open()
    times: list[float] = []
    try:
        while len(times) < limit:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        source.close()
    return times


def _row(label: str, times: list[float]) -> str:
    if not times:
        return f"| {label} | – | – | – | 0 |"
    times = sorted(times)
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    return f"| {label} | {median:.2f} | {p90:.2f} | {1000.0 / median:.0f} | {len(times)} |"


def _hash_rate(size_mb: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob.bin"
        path.write_bytes(os.urandom(size_mb << 20))
        t0 = time.perf_counter()
        sha256_file(path)
        return size_mb / (time.perf_counter() - t0)


def run(options: BenchOptions) -> str:
    limit = 30 if options.quick else 400
    media = Path(options.shared_dir) / "media"
    rows = ["| source | median ms/frame | p90 ms | fps | frames |", "|---|---|---|---|---|"]
    for name in ("talking_head.mp4", "street_people.avi"):
        path = media / name
        if path.exists():
            rows.append(_row(f"video {name}", _time_reads(VideoSource(path), limit)))
    if media.is_dir():
        rows.append(_row("image folder media/ (JPEG/PNG decode)", _time_reads(ImageSource(media), limit)))
    for w, h in ((640, 480), (1280, 720)):
        rows.append(_row(f"synthetic {w}x{h}", _time_reads(SyntheticSource(w, h, 30.0, frames=limit), limit)))
    size_mb = 16 if options.quick else 128
    rate = _hash_rate(size_mb)
    notes = [f"sha256 of installed weights: {rate:.0f} MB/s ({size_mb} MB file), i.e. a 100 MB checkpoint costs "
             f"{100 / rate * 1000:.0f} ms when its cache record is stale; cached records cost a stat() only.",
             "Reads are unpaced (realtime=False): this is decode cost, not playback rate.",
             f"Peak RSS: {peak_rss_mb():.0f} MB."]
    return "\n".join(rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)
