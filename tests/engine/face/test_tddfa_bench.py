"""Smoke test of the 3DDFA_V2 benchmark code (numbers are not judged here)."""
from __future__ import annotations

from engine.bench import BenchOptions
from engine.bench.tddfa import run


def test_bench_runs_and_reports_both_thread_counts(shared_dir):
    body = run(BenchOptions(repeats=5, quick=True, shared_dir=shared_dir))
    rows = [line for line in body.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2, body
    assert all(len(row.split("|")) == 6 for row in rows)
