"""Smoke test of the HMR benchmark code (numbers are not judged here)."""
from __future__ import annotations

from engine.bench import BenchOptions
from engine.bench.hmr import run


def test_bench_runs_and_reports_both_thread_counts(shared_dir):
    body = run(BenchOptions(quick=True, shared_dir=shared_dir))
    hmr = body[:body.index("### PointHMR")]
    rows = [line for line in hmr.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2, body
    assert all(len(row.split("|")) == 7 for row in rows)
    assert "seeded reference checkpoint" in body and "stand-in" in body
    pointhmr = body[body.index("### PointHMR"):]
    rows = [line for line in pointhmr.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2 and all(len(row.split("|")) == 13 for row in rows), pointhmr
    assert "GMAC" in pointhmr and "Target: PointHMR's forward at most 2x HMR's. Measured:" in pointhmr
