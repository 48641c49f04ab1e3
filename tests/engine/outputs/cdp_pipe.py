"""Drive headless Chromium through the DevTools protocol over `--remote-debugging-pipe`.

With that flag Chromium reads NUL-terminated JSON commands from fd 3 and writes replies and
events to fd 4, so the stdlib (subprocess + os.pipe) is enough: no websocket client needed.
Used by the MJPEG browser test; small on purpose.
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class CdpPipeError(RuntimeError):
    pass


class HeadlessChromium:
    """A headless Chromium process and a CDP session over its debugging pipe."""

    def __init__(self, executable: str, timeout_s: float = 20.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="holocap-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Move the child's ends above 9 so the shell's 3/4 redirections cannot clobber them.
        to_child_r, from_child_w = (_high_fd(to_child_r), _high_fd(from_child_w))
        self._log = tempfile.TemporaryFile()
        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--mute-audio",
                f"--user-data-dir={self._profile}", "--remote-debugging-pipe", "about:blank"]
        # bash (dash only knows fds 0-9) puts our pipe ends on fds 3 and 4, where Chromium expects them.
        script = f'exec 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-; exec "$@"'
        self.proc = subprocess.Popen([shutil.which("bash") or "/bin/bash", "-c", script, "bash", *args], pass_fds=(to_child_r, from_child_w),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command; return its `result` (events in between are discarded)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpPipeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpPipeError(f"no reply from Chromium within {self.timeout_s} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise CdpPipeError(f"Chromium closed the debugging pipe. Its output: {self.output()[-2000:]}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def output(self) -> str:
        """What Chromium printed so far (stdout and stderr)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def open_page(self, url: str) -> str:
        """Open `url` in a new tab; returns the CDP session id attached to it."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, session: str, expression: str) -> Any:
        """Evaluate JS in the page (awaiting a promise); returns the value (JSON-able)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise CdpPipeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (CdpPipeError, OSError):
            pass  # already gone; the kill below makes sure
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "HeadlessChromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

