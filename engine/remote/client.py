"""`--remote URL`: a stage that runs on a `holocap serve` server and falls back to its
local copy the moment the server stops answering.

RemoteStage is an ordinary Stage to the pipeline. Each frame it posts the frame and the
results the stage reads to `URL/<stage>`; the reply is the same Result a local run makes.
When a request fails (refused, timed out, 5xx from the proxy, a rejected token) the same
frame is processed by the local stage, so no frame is lost and headless runs stay
lossless and in order; a probe thread then asks the server's health every `retry_s` and,
once it answers and the session is open again, the next frame goes remote with `reset`
(the server's copy missed the frames run here). A stage that *raises* on the server is
counted like a local failure (the pipeline logs and skips it), not a fallback.
"""
from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from engine.frame import Frame
from engine.remote import wire
from engine.remote.session import SessionSpec
from engine.stage_protocol import Result, Stage, StageContext

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 180.0  # building a session's stage on the server loads its models (Anny: ~1 min first time)
HEALTH_TIMEOUT_S = 3.0  # the least a health check waits for an answer
BUILD_RETRY_S = 30.0  # after the server said it cannot build the stage
MULTIPLEX_HEADER = "serve_multiplexed_model_id"


class RemoteUnavailable(Exception):
    """The server did not give a usable answer; the frame runs locally instead."""


class RemoteStageError(RuntimeError):
    """The stage itself raised on the server (counted and skipped like a local failure)."""


class RemoteBuildError(RemoteUnavailable):
    """The server cannot build this stage (its weights, its GPU): asking again each second
    would rebuild it each second, so the probe waits longer."""


@dataclass(frozen=True)
class RemoteOptions:
    url: str  # http://host:port (the stages are at /face, /body, /volume)
    token: str | None = None
    timeout_s: float = 1.0
    jpeg_quality: int = 90
    lossless: bool = False  # PNG frames and exact arrays: remote results equal local ones
    retry_s: float = 1.0  # how often a fallen-back stage asks whether the server is back
    stages: tuple[str, ...] = ("face", "body", "volume")

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--remote {self.url}: give http://HOST:PORT (https behind a TLS proxy)")


class StageClient:
    """HTTP to one stage's route, one keep-alive connection per instance (not thread-safe:
    each user keeps its own)."""

    def __init__(self, options: RemoteOptions, stage: str, session: SessionSpec) -> None:
        parts = urlsplit(options.url)
        self.options, self.stage, self.session = options, stage, session
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or (443 if self._https else 80)
        self._path = f"{parts.path.rstrip('/')}/{stage}"
        self._conn: http.client.HTTPConnection | None = None
        self._session_id = session.session_id()
        self._held = wire.HeldArrays()  # unchanging arrays of the replies
        self._sending = wire.ArrayCache(secrets.token_hex(4))  # ... and of the requests
        self._server_holds: frozenset[str] = frozenset()  # request arrays the session has

    def _request(self, method: str, path: str, body: bytes | None, timeout: float) -> bytes:
        headers = {MULTIPLEX_HEADER: self._session_id, "Content-Type": "application/octet-stream"}
        if self.options.token:
            headers["Authorization"] = f"Bearer {self.options.token}"
        try:
            if self._conn is None:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(self._host, self._port, timeout=timeout)
                self._conn.connect()
                # Request/response: no Nagle wait for the tail of a message.
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
            self._conn.request(method, path, body=body, headers=headers)
            reply = self._conn.getresponse()
            data = reply.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RemoteUnavailable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if reply.status == 200:
            return data
        why = data[:200].decode(errors="replace")
        kind = reply.getheader("x-holocap-error")
        if reply.status == 500 and kind == "stage":
            raise RemoteStageError(f"on the server: {why}")
        if reply.status == 500 and kind == "build":
            raise RemoteBuildError(why)
        if reply.status in (401, 403):
            why = "the server refused the token (--remote-token)"
        raise RemoteUnavailable(f"HTTP {reply.status}: {why}")

    def open(self) -> dict[str, Any]:
        """Prepare this session on the server (loads the stage's models there); returns what
        the server says of it, e.g. {"reads_pixels": False}: the frame's pixels need not go."""
        # A short health check first: a host that drops packets fails in seconds, not after
        # the long wait a stage's model loading may need.
        self._request("GET", f"{self._path}/health", None, max(self.options.timeout_s, HEALTH_TIMEOUT_S))
        data = self._request("POST", f"{self._path}/open", b"", OPEN_TIMEOUT_S)
        self.forget_server_arrays()
        try:
            info = json.loads(data)
        except ValueError:
            raise RemoteUnavailable("the server's answer to open is not JSON") from None
        return info if isinstance(info, dict) else {}

    def forget_server_arrays(self) -> None:
        """The session was (re)opened, maybe on a new server: send every array in full again."""
        self._server_holds = frozenset()

    def process(self, request: wire.StageRequest, pixels: bool = True) -> wire.StageReply:
        request = replace(request, have=self._held.keys())
        body = wire.encode_request(request, lossless=self.session.lossless, jpeg_quality=self.options.jpeg_quality,
                                   pixels=pixels, cache=self._sending, held_by_server=self._server_holds)
        data = self._request("POST", self._path, body, self.options.timeout_s)
        self._server_holds = frozenset(self._sending.keys())
        try:
            return wire.decode_reply(data, self._held)
        except wire.WireError as exc:
            raise RemoteUnavailable(f"unreadable reply: {exc}") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RemoteStage:
    """`local` run on the server while it answers, locally when it does not."""

    def __init__(self, local: Stage, options: RemoteOptions, session: SessionSpec) -> None:
        self.local = local
        self.name: str = local.name
        self.requires: tuple[str, ...] = tuple(getattr(local, "requires", ()))
        self.options = options
        self._client = StageClient(options, self.name, session)
        self._probe_client = StageClient(options, self.name, session)
        self._remote_ok = False
        self._reset_next = True
        self._controls: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._rtt_ms: deque[float] = deque(maxlen=100)
        self._server_ms: deque[float] = deque(maxlen=100)
        self.frames_remote = 0
        self.local_frames: set[int] = set()  # frame indices this stage ran here (summary.json)
        self.fallbacks = 0
        self.last_error: str | None = None
        self.remote_attrs: dict[str, Any] = {}
        self._export_to: Path | None = None  # an export asked for while the server runs the stage
        # The first open waits (a run that starts with the server up runs every frame there);
        # after that, reconnecting happens on the probe thread, never in a frame's time.
        self._pixels = True
        try:
            self._pixels = bool(self._client.open().get("reads_pixels", True))
            self._remote_ok = True
            log.info("%s: running on the server at %s", self.name, options.url)
        except (RemoteUnavailable, RemoteStageError) as exc:
            self.last_error = str(exc)
            log.warning("%s: no server at %s (%s); running it here and retrying every %.0f s",
                        self.name, options.url, exc, options.retry_s)
        self._probe = threading.Thread(target=self._probe_loop, name=f"remote-{self.name}-probe", daemon=True)
        self._probe.start()

    # -- what the HUD and the summary read --------------------------------------------
    @property
    def where(self) -> str:
        return "remote" if self._remote_ok else "local"

    @property
    def round_trip_ms(self) -> float | None:
        return float(np.median(self._rtt_ms)) if self._rtt_ms else None

    def summary(self) -> dict[str, Any]:
        return {"url": self.options.url, "where": self.where, "frames_remote": self.frames_remote,
                "frames_local": len(self.local_frames), "fallbacks": self.fallbacks,
                "round_trip_ms_median": None if not self._rtt_ms else round(float(np.median(self._rtt_ms)), 3),
                "server_stage_ms_median": None if not self._server_ms else round(float(np.median(self._server_ms)), 3),
                "last_error": self.last_error}

    @property
    def quality_level(self) -> Any:
        if self._remote_ok and self.remote_attrs.get("quality_level") is not None:
            return self.remote_attrs["quality_level"]
        return getattr(self.local, "quality_level", None)

    # -- live controls: applied here and sent along ----------------------------------
    def set_quality(self, quality: str, target_fps: float | None = None) -> None:
        if hasattr(self.local, "set_quality"):
            self.local.set_quality(quality, target_fps)
        self._controls = {**self._controls, "quality": quality, "target_fps": target_fps}

    def set_yaws(self, yaws: tuple[float, ...]) -> None:
        if hasattr(self.local, "set_yaws"):
            self.local.set_yaws(yaws)
        self._controls = {**self._controls, "yaws": [float(y) for y in yaws]}

    def request_export(self, folder: Any) -> None:
        """Write the next mesh into `folder`: a result from the server is written here, by
        the client, as .ply; while the stage runs here, its local copy writes it."""
        if self._remote_ok and self.name in ("face", "body"):
            self._export_to = Path(folder)
        elif hasattr(self.local, "request_export"):
            self.local.request_export(folder)

    def _export(self, frame: Frame, result: Result | None) -> None:
        folder, self._export_to = self._export_to, None
        if folder is None or result is None:
            self._export_to = folder  # nothing to write this frame: the next result is
            return
        from engine.frame_result import FrameResult
        from engine.headless_writer import export_frame_meshes

        try:
            export_frame_meshes(FrameResult(frame, {self.name: result}), folder)
        except OSError as exc:  # a full disk or a vanished folder: say so, keep running
            log.error("%s: could not export the mesh to %s: %s", self.name, folder, exc)

    # -- the Stage protocol -----------------------------------------------------------
    def process(self, frame: Frame, ctx: StageContext) -> Result | None:
        if self._remote_ok:
            request = wire.StageRequest(frame, {k: ctx.get(k) for k in self.requires}, self._reset_next,
                                        dict(self._controls))
            t0 = time.perf_counter()
            try:
                reply = self._client.process(request, pixels=self._pixels)
            except RemoteUnavailable as exc:
                self._fall_back(str(exc))
            else:
                self._reset_next = False
                self._rtt_ms.append((time.perf_counter() - t0) * 1000.0)
                self._server_ms.append(reply.stage_ms)
                self.remote_attrs = reply.attrs
                self.frames_remote += 1
                if self._export_to is not None:
                    self._export(frame, reply.result)
                return reply.result
        self.local_frames.add(frame.index)
        if self._export_to is not None and hasattr(self.local, "request_export"):
            self.local.request_export(self._export_to)  # asked while remote; the server went away
            self._export_to = None
        return self.local.process(frame, ctx)

    def reset(self) -> None:
        self.local.reset()
        self._reset_next = True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._probe.join(timeout=1.0)
        self._client.close()
        self.local.close()

    # -- falling back and coming back -------------------------------------------------
    def _fall_back(self, why: str) -> None:
        with self._lock:
            self._remote_ok = False
            self.fallbacks += 1
            self.last_error = why
        log.warning("%s: the server at %s stopped answering (%s); running it here until it is back",
                    self.name, self.options.url, why)
        # The local copy last ran before the server took over: its filters and tracks are
        # stale, so it starts afresh on this frame (the pipeline's thread: no race with process).
        self.local.reset()
        self._wake.set()

    def _probe_loop(self) -> None:
        """While local: open the session on the server every retry_s until it answers."""
        wait = self.options.retry_s
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self._remote_ok or self._stop.is_set():
                continue
            try:
                pixels = bool(self._probe_client.open().get("reads_pixels", True))
            except (RemoteUnavailable, RemoteStageError) as exc:
                log.debug("%s: server still away: %s", self.name, exc)
                self.last_error = str(exc)
                wait = BUILD_RETRY_S if isinstance(exc, RemoteBuildError) else self.options.retry_s
                continue
            wait = self.options.retry_s
            self._client.forget_server_arrays()  # the probe opened the session: maybe a new one
            with self._lock:
                self._pixels, self._remote_ok, self._reset_next = pixels, True, True
            log.info("%s: the server at %s is back; running there again", self.name, self.options.url)
        self._probe_client.close()
