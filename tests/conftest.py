"""Shared fixtures: where ../shared lives, and the rule that CI allows no skips."""
from __future__ import annotations

import lzma
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HOLOCAP_SHARED_DIR", REPO.parent / "shared"))


def _skips_fail() -> bool:
    # CI (CI=true) must never pass by skipping: missing reference data is a failure there.
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("HOLOCAP_NO_SKIPS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _skips_fail() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which counts as a failure: {reason}"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep tests away from the user's real settings, logs and installed weights."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("HOLOCAP_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HOLOCAP_LOG_DIR", str(base / "log"))
    monkeypatch.setenv("HOLOCAP_WEIGHTS_DIR", str(base / "weights"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference data not found: {SHARED} (the ../shared folder beside the repo)")
    return SHARED


def _shared_path(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"reference file not found: {path}")
    return path


@pytest.fixture(scope="session")
def shared_file():
    """shared_file("reference/3ddfa_v2/golden.json") -> Path, skipping when absent."""
    return _shared_path


@pytest.fixture(scope="session")
def unxz(tmp_path_factory):
    """unxz("reference/pifu/pifu_netG.pth.xz") -> Path of the decompressed copy in a temp dir."""
    out_dir = tmp_path_factory.mktemp("unxz")

    def _unxz(relative: str) -> Path:
        src = _shared_path(relative)
        dst = out_dir / src.name.removesuffix(".xz")
        if not dst.exists():
            with lzma.open(src) as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        return dst

    return _unxz


@pytest.fixture(scope="session", autouse=True)
def _sanitized_qt_environment():
    """cv2 (imported while collecting) points Qt at its own plugins; undo it before any
    QApplication is made by pytest-qt."""
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def test_device():
    """The torch device the parity tests run on: $HOLOCAP_TEST_DEVICE (default "cpu";
    tools/gpu_check.sh sets "cuda"). CUDA asked for and absent is a failure, not a skip.
    TF32 is off on CUDA: the parity bounds are float32's."""
    import torch

    name = os.environ.get("HOLOCAP_TEST_DEVICE", "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            pytest.fail(f"HOLOCAP_TEST_DEVICE={name}, but torch {torch.__version__} sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)
