"""tools/gpu_check.sh: its CPU dry run (what CI can run) and its refusal without CUDA."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

SCRIPT = REPO / "tools/gpu_check.sh"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOLOCAP_GPU_PYTHON": sys.executable}
    env.pop("HOLOCAP_TEST_DEVICE", None)
    return subprocess.run([str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_dry_run_runs_the_parity_tests_and_the_timings_on_the_cpu():
    done = _run("--dry-run", timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "gpu_check: device cpu" in out
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 30 and " failed" not in out and "skipped" not in out, out[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "float32" in line]
    assert len(rows) == 4, done.stdout
    assert all(float(row.split("|")[3].split()[0]) > 0 for row in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_without_cuda_it_says_so_and_fails():
    done = _run(timeout=120)
    assert done.returncode == 2
    assert "has no CUDA device" in done.stderr and "--dry-run" in done.stderr
