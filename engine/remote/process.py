"""`holocap serve` as a child process, for `bench remote` and the tests: start it, wait
until its stages answer, measure its memory, stop it (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import http.client
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from engine.paths import repo_root

log = logging.getLogger(__name__)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants (Ray's raylet, GCS, Serve actors)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        todo.extend(_children(p))
    return total / 1024.0


def health(url: str, stage: str, token: str | None = None, timeout: float = 2.0) -> int | None:
    """HTTP status of GET URL/<stage>/health, or None when nothing answers."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request("GET", f"/{stage}/health", headers=headers)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


class ServerProcess:
    """`python main.py serve ARGS` in its own process group; `url` once `start()` returns."""

    def __init__(self, stages: Sequence[str], port: int, *, token: str | None = None, host: str = "127.0.0.1",
                 num_cpus: int | None = None, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        self.stages, self.port, self.token, self.host = tuple(stages), port, token, host
        self.url = f"http://{host}:{port}"
        self._args = ["serve", "--stages", ",".join(stages), "--port", str(port), "--host", host]
        if num_cpus:
            self._args += ["--num-cpus", str(num_cpus)]
        self._env = {**os.environ, **(env or {})}
        if token:
            self._env["HOLOCAP_TOKEN"] = token  # not on the command line, where ps shows it
        self._log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120.0) -> "ServerProcess":
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, str(repo_root() / "main.py"), *self._args], env=self._env,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"holocap serve exited with status {self.proc.returncode}"
                                   + (f" (log: {self._log_path})" if self._log_path else ""))
            if all(health(self.url, s, self.token) == 200 for s in self.stages):
                return self
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"holocap serve did not answer within {timeout_s:.0f} s")

    def rss_mb(self) -> float:
        return tree_rss_mb(self.proc.pid) if self.proc is not None else 0.0

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (Serve and Ray shut down), SIGKILL to the group after `timeout_s`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("holocap serve did not stop within %.0f s: killing it", timeout_s)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # Ray's own processes, whatever is left
        except ProcessLookupError:
            pass  # the group is already gone: nothing left to kill
        self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
