"""bench soak: a long `--loop --record` headless run as an event would leave it running.

Runs `main.py run --headless --loop --record` on the talking-head clip in a child process
for `--seconds` (default 1800), sampling its RSS and the disk its outputs take every 10 s,
then stops it with SIGINT and checks what an operator would find: every finished segment
(overlay and recording) playable, the outputs within the disk budget, RSS growth after the
first minute. Segments are 1 minute and the budget 1 GB here, so a half-hour run exercises
segment rotation and deletion of the oldest many times (the defaults are 10 min / 20 GB).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.bench import BenchOptions
from engine.paths import repo_root
from engine.sources.video import count_decodable_frames

log = logging.getLogger(__name__)

SAMPLE_S = 10.0
SEGMENT_MINUTES = 1.0
BUDGET_GB = 1.0


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:  # the child has exited
        return None
    return None


def _disk_mb(*folders: Path) -> float:
    total = 0
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                if path.is_file():
                    total += path.stat().st_size
            except FileNotFoundError:  # deleted by the budget while we walked
                continue
    return total / 1e6


def run(options: BenchOptions) -> str:
    seconds = options.seconds or (60.0 if options.quick else 1800.0)
    clip = options.source or options.shared_dir / "media" / "talking_head.mp4"
    if not clip.is_file():
        from engine.sources.errors import SourceError

        raise SourceError(f"bench soak needs the clip {clip} (give another with --source)")
    tmp = Path(tempfile.mkdtemp(prefix="holocap_soak_"))
    out, rec = tmp / "out", tmp / "rec"
    cmd = [sys.executable, str(repo_root() / "main.py"), "run", "--headless", "--source", str(clip), "--loop",
           "--out", str(out), "--record", str(rec), "--no-progress",
           "--segment-minutes", str(SEGMENT_MINUTES), "--disk-budget-gb", str(BUDGET_GB)]
    log.info("soak: %s for %.0f s", " ".join(cmd), seconds)
    proc = subprocess.Popen(cmd, cwd=repo_root(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    samples: list[tuple[float, float | None, float]] = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds and proc.poll() is None:
            time.sleep(SAMPLE_S)
            rec.mkdir(parents=True, exist_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            samples.append((time.monotonic() - t0, _rss_mb(proc.pid), _disk_mb(out, rec)))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    overlay = sorted(out.glob("overlay_*.mp4"))
    rec_dirs = list(rec.glob("*")) if rec.exists() else []
    rec_segments = sorted(rec_dirs[0].glob("video/segment_*.mp4")) if rec_dirs else []
    unplayable = [p.name for p in overlay + rec_segments if ".partial" not in p.name and count_decodable_frames(p) == 0]
    partial = [p.name for p in overlay + rec_segments if ".partial" in p.name]
    rss = [(t, r) for t, r, _ in samples if r is not None]
    after_first_minute = [r for t, r in rss if t >= 60.0]
    growth = (100.0 * (after_first_minute[-1] - after_first_minute[0]) / after_first_minute[0]
              if len(after_first_minute) >= 2 else float("nan"))
    peak_disk = max((d for _, _, d in samples), default=0.0)
    rows = [{"t_s": round(t, 1), "rss_mb": None if r is None else round(r, 1), "disk_mb": round(d, 1)}
            for t, r, d in samples]
    if options.json is not None:
        options.json.write_text(json.dumps({"rows": rows, "summary": summary, "rss_growth_pct": growth,
                                            "peak_disk_mb": peak_disk}, indent=1, default=str))
    try:
        shutil.rmtree(tmp)  # up to the budget of videos and meshes: not worth keeping
    except OSError as exc:
        log.warning("soak: could not remove %s: %s", tmp, exc)
    load = os.getloadavg()
    lines = [
        f"`bench soak`: `run --headless --loop --record` on {clip.name} for {seconds:.0f} s "
        f"(segments {SEGMENT_MINUTES:g} min, disk budget {BUDGET_GB:g} GB), sampled every {SAMPLE_S:.0f} s; "
        f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}.",
        "",
        f"- exit status {proc.returncode}; frames processed {summary.get('frames_processed')}, "
        f"{summary.get('fps')} fps; output errors {summary.get('output_errors') or 'none'}",
        f"- RSS after the first minute: {after_first_minute[0] if after_first_minute else float('nan'):.0f} MB "
        f"-> {after_first_minute[-1] if after_first_minute else float('nan'):.0f} MB at the end "
        f"(growth {growth:+.1f} %; goal < 5 %)",
        f"- disk: peak {peak_disk:.0f} MB of the {BUDGET_GB * 1000:.0f} MB budget (all files, the open "
        f"segments and frames.jsonl included; the budget reserves room for the pieces being written); "
        f"deleted {summary.get('disk', {}).get('deleted_segments')} old segments",
        f"- segments left: {len(overlay)} overlay, {len(rec_segments)} recording; unplayable: "
        f"{unplayable or 'none'}; still .partial after the stop: {partial or 'none'}",
        "",
        "| t (s) | RSS (MB) | disk (MB) |",
        "|---:|---:|---:|",
    ]
    step = max(1, len(rows) // 30)  # at most ~30 rows in the table; all of them in --json
    for row in rows[::step] + ([rows[-1]] if rows and (len(rows) - 1) % step else []):
        lines.append(f"| {row['t_s']:.0f} | {row['rss_mb']} | {row['disk_mb']:.0f} |")
    if proc.returncode not in (0, 130) or "Traceback" in (stderr or ""):
        lines += ["", "stderr tail:", "```", (stderr or "")[-2000:], "```"]
    return "\n".join(lines)
