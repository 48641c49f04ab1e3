"""The desktop app stopped by a process manager: SIGTERM closes the window as the user would
(session stopped, recording finished, settings saved) and exits 143."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui  # a display is needed; it runs the app in its own process

if not os.environ.get("DISPLAY"):
    pytest.skip("needs an X display (run the tests under xvfb-run)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_closes_the_window_cleanly_and_saves_settings(tmp_path):
    config = tmp_path / "config"
    env = dict(os.environ, HOLOCAP_CONFIG_DIR=str(config))
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "gui", "--source", "synthetic:320x240@30",
                             "--stages", "perception", "--view", "mesh"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8.0)  # the window is up and the pipeline running
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert proc.returncode == 143, stderr[-2000:]
    assert time.monotonic() - t0 < 30
    assert json.loads((config / "settings.json").read_text())["view"] == "mesh"
