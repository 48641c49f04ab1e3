"""The disk budget keeps the newest finished pieces and never touches what is being written."""
from __future__ import annotations

import logging

import pytest

from engine.outputs.disk_budget import DiskBudget


def _piece(folder, name, nbytes):
    path = folder / name
    path.write_bytes(b"x" * nbytes)
    return path


def test_oldest_groups_go_first_and_the_total_stays_within_the_limit(tmp_path, caplog):
    budget = DiskBudget(10_000)
    paths = []
    with caplog.at_level(logging.WARNING):
        for i in range(12):
            group = [_piece(tmp_path, f"seg{i}.mp4", 600), _piece(tmp_path, f"seg{i}.jsonl", 400)]
            paths.append(group)
            budget.register(f"segment {i}", group)
            on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
            # finished + two open pieces the size of the largest finished one
            assert on_disk + 2 * 1000 <= 10_000 or budget.deleted_groups == 0
    assert all(p.exists() for p in paths[-1])  # the newest are kept
    assert not any(p.exists() for p in paths[0])  # the oldest are gone
    assert budget.deleted_groups >= 4
    assert sum("disk budget" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1


def test_tracked_growing_file_counts(tmp_path):
    budget = DiskBudget(5_600)
    log_file = _piece(tmp_path, "frames.jsonl", 3_000)
    budget.track(log_file)
    a = [_piece(tmp_path, "a.mp4", 500)]
    budget.register("a", a)
    b = [_piece(tmp_path, "b.mp4", 500)]
    budget.register("b", b)  # 3000 + 1000 + 2 x 500 reserve = 5000: fits
    assert a[0].exists()
    log_file.write_bytes(b"x" * 3_300)  # 1500 + 3300 + 1000 > 5600: a goes
    budget.register("c", [_piece(tmp_path, "c.mp4", 500)])
    assert not a[0].exists() and b[0].exists() and log_file.exists()


def test_the_newest_piece_is_kept_even_when_it_alone_is_over(tmp_path):
    budget = DiskBudget(100)
    big = [_piece(tmp_path, "big.mp4", 1_000)]
    budget.register("big", big)
    assert big[0].exists()


def test_no_limit_only_counts_and_bad_limits_are_refused(tmp_path):
    budget = DiskBudget(None)
    budget.register("a", [_piece(tmp_path, "a", 10)])
    assert budget.summary()["limit_gb"] is None and budget.used_bytes == 10
    with pytest.raises(ValueError):
        DiskBudget(0)
