"""Benchmarks (`python main.py bench NAME`): speed and memory, written to docs/PERFORMANCE.md.

Each benchmark is a module `engine/bench/<name>.py` with
`def run(options: BenchOptions) -> str` returning a markdown section body (tables, notes).
`write_section` puts it into docs/PERFORMANCE.md between `<!-- bench:NAME -->` markers,
with the machine and date, replacing the previous run of the same benchmark.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.paths import repo_root


@dataclass(frozen=True)
class BenchOptions:
    repeats: int = 50
    device: str = "auto"
    shared_dir: Path = repo_root().parent / "shared"
    quick: bool = False  # fewer repeats, for smoke tests of the bench code itself
    source: Path | None = None  # another clip instead of the benchmark's default (bench app)
    fps: float | None = None  # pace the source at this rate (bench app)
    seconds: float | None = None  # measuring span per configuration (bench app)
    json: Path | None = None  # also write the rows as JSON here (benchmarks that support it)
    face_clip: Path | None = None  # bench quality: the face clip (default: the talking head)
    body_clip: Path | None = None  # bench quality: the body clip (default: the street clip)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """Call `fn` `warmup` times, then time `repeats` calls: (median ms, 90th percentile ms)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:  # no /proc (not Linux): the platform's processor string stays
        cpu = cpu or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_section(name: str, body: str, path: Path | None = None) -> Path:
    path = path or repo_root() / "docs" / "PERFORMANCE.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else "# Performance\n\nWritten by `python main.py bench NAME`; each section says where and when it ran.\n"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- bench:{name} -->\n## {name}\n\n_Machine: {machine_line()}. Date: {stamp}._\n\n"
               f"{body.strip()}\n<!-- /bench:{name} -->")
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path
