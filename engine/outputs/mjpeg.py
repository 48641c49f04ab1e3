"""An MJPEG-over-HTTP output that works everywhere (browsers, OBS browser source, VLC, ffmpeg).

Routes (all need `?token=...` when a token is set; 403 otherwise):
  /              an HTML page showing the stream in an <img>
  /stream.mjpg   multipart/x-mixed-replace JPEG stream, one part per new frame
  /snapshot.jpg  the newest frame as one JPEG
The server binds 127.0.0.1 unless told otherwise; port 0 picks a free port (`address`).
Each new frame is JPEG-encoded once and the bytes are shared by every client; with no
client watching nothing is encoded. Clients that go away never disturb the server.

Locked down by default, since a web page can make the browser talk to it:
- Without a token (and unless told to serve a LAN), the Host header must be the bound
  address, an IP literal or localhost: a DNS-rebinding page (Host: evil.example) gets 403.
- A request head may be `max_request_bytes` long and must arrive within `head_timeout_s`.
- At most `max_clients` connections are served; when full, a connection still sending its
  request head is dropped for the newcomer, else the newcomer gets 503. A flood of idle
  connections therefore never locks a real viewer out.
- The token is never logged (engine.logs redacts `token=`).
"""
from __future__ import annotations

import hmac
import html
import http.client
import logging
import socket
import socketserver
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from engine.outputs.base import OutputItem, ThreadedOutput
from engine.outputs.http_guard import BoundedReader, host_allowed, parse_host_port

__all__ = ["MjpegServer", "MjpegSettings", "FrameBoard", "encode_jpeg", "parse_host_port"]

logger = logging.getLogger(__name__)

BOUNDARY = "holocapframe"
# How often waiting stream handlers look up to notice shutdown (seconds).
POLL_S = 0.1
# How long /snapshot.jpg waits for a first frame before answering 503 (seconds).
SNAPSHOT_WAIT_S = 1.0


def encode_jpeg(image_bgr: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 BGR -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image_bgr.shape}")
    return buf.tobytes()


@dataclass(frozen=True)
class MjpegSettings:
    """host/port: where to listen (port 0: any free port). token: required as ?token=...
    when set. quality: JPEG quality 1..100."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    quality: int = 80
    lan: bool = False  # serve any Host name (e.g. mypc.local): only on a network you trust
    max_clients: int = 32
    max_request_bytes: int = 8192
    head_timeout_s: float = 2.0


class FrameBoard:
    """The newest frame, numbered, with its JPEG encoded at most once, on first demand.

    Stream handlers wait for a number newer than the one they sent last.
    """

    def __init__(self, quality: int) -> None:
        self.quality = quality
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._seq = 0
        self._image: np.ndarray | None = None
        self._jpeg: bytes | None = None
        self._closed = False
        self._viewers = 0
        self.encoded = 0

    @property
    def viewers(self) -> int:
        return self._viewers

    def add_viewer(self, delta: int) -> None:
        with self._cond:
            self._viewers += delta

    def publish(self, image: np.ndarray) -> None:
        with self._cond:
            self._seq += 1
            self._image, self._jpeg = image, None
            self._cond.notify_all()
        if self.viewers:  # someone is watching: encode now, on the output's thread
            self.newest_jpeg()

    def wait_newer(self, after_seq: int, timeout: float) -> tuple[int, bytes] | None:
        """(seq, jpeg) of a frame newer than `after_seq`, or None on timeout/close."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > after_seq or self._closed, timeout):
                return None
            if self._closed:
                return None
        # The frame returned may be newer still than the one that woke us: the newest wins.
        return self.newest_jpeg()

    def newest_jpeg(self) -> tuple[int, bytes] | None:
        """(seq, jpeg) of the newest frame, encoding it if nobody has yet; None before any."""
        with self._encode_lock:
            with self._cond:
                if self._image is None:
                    return None
                if self._jpeg is not None:
                    return self._seq, self._jpeg
                image, seq = self._image, self._seq
            jpeg = encode_jpeg(image, self.quality)
            with self._cond:
                if self._seq == seq:  # still the newest: keep it for the other clients
                    self._jpeg = jpeg
                self.encoded += 1
            return seq, jpeg

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins the handler threads

    request_queue_size = 128  # a burst of connections waits in the kernel, not refused

    def __init__(self, address: tuple[str, int], board: FrameBoard, settings: MjpegSettings) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.board = board
        self.settings = settings
        self.token = settings.token
        self._connections: set[socket.socket] = set()
        self._pending: dict[socket.socket, float] = {}  # still sending its request head: since
        self._active = 0
        self._conn_lock = threading.Lock()
        self.refused = 0
        self.evicted = 0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            if self._active >= self.settings.max_clients and self._pending:
                # Full, but someone is idling before sending a request: drop the oldest
                # idler for this newcomer (it is woken by the shutdown and exits).
                idler = min(self._pending, key=self._pending.__getitem__)
                del self._pending[idler]
                self.evicted += 1
                try:
                    idler.shutdown(socket.SHUT_RDWR)
                except OSError as exc:
                    logger.debug("mjpeg: dropping an idle client: %s", exc)
            elif self._active >= self.settings.max_clients:
                self.refused += 1
                self._refuse(request)
                return
            self._active += 1
            self._pending[request] = time.monotonic()
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._active -= 1
                self._pending.pop(request, None)

    def head_received(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._pending.pop(conn, None)

    def _refuse(self, request: socket.socket) -> None:
        body = b"too many clients; try again shortly\n"
        try:
            request.settimeout(0.5)
            request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                            b"Retry-After: 2\r\nConnection: close\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError as exc:
            logger.debug("mjpeg: refusing a client: %s", exc)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The stdlib prints a traceback to stderr; a misbehaving client is not our error.
        logger.debug("mjpeg: error while serving a client", exc_info=True)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can hang on machines
        # without DNS; the name is only used in CGI environments.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def shutdown_connections(self) -> None:
        """Wake handlers blocked on a slow or silent client by shutting its socket down."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError as exc:  # already closed by the client: nothing to wake
                logger.debug("mjpeg: shutting down a client socket: %s", exc)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10.0  # seconds a client may stall a read or write before it is dropped

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.settings.head_timeout_s)  # the head comes fast
        self.rfile = BoundedReader(self.rfile, self.server.settings.max_request_bytes)  # type: ignore[assignment]
        self.server.track(self.connection, True)

    def handle(self) -> None:
        try:
            super().handle()
        except http.client.LineTooLong:
            self.request_version = "HTTP/1.0"
            self.close_connection = True
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too long")

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
        # The request line holds ?token=...: engine.logs redacts it in every handler.
        logger.debug("mjpeg %s: " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib's name)
        self.server.head_received(self.connection)
        self.connection.settimeout(self.timeout)
        settings = self.server.settings
        if settings.token is None and not settings.lan and \
                not host_allowed(self.headers.get("Host"), str(self.server.server_address[0])):
            self.send_error(HTTPStatus.FORBIDDEN, "unexpected Host header (set a token or serve the LAN)")
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if not self._authorised(query.get("token", [""])[0]):
            self.send_error(HTTPStatus.FORBIDDEN, "missing or wrong token")
            return
        routes = {"/": self._page, "/index.html": self._page,
                  "/stream.mjpg": self._stream, "/snapshot.jpg": self._snapshot}
        route = routes.get(url.path)
        if route is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            route()
        except (ConnectionError, TimeoutError) as exc:  # the client left or stalled
            logger.debug("mjpeg client %s gone: %s", self.address_string(), exc)

    def _authorised(self, given: str) -> bool:
        token = self.server.token
        return token is None or hmac.compare_digest(given.encode(), token.encode())

    def _token_query(self) -> str:
        token = self.server.token
        return "" if token is None else "?" + urllib.parse.urlencode({"token": token})

    def _page(self) -> None:
        src = html.escape("stream.mjpg" + self._token_query(), quote=True)
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>holocap</title>"
            "<style>html,body{margin:0;height:100%;background:#000}"
            "img{display:block;width:100%;height:100%;object-fit:contain}</style></head>"
            f"<body><img id='stream' src='{src}' alt='holocap live view'></body></html>"
        ).encode()
        self._send_headers("text/html; charset=utf-8", len(body))
        self.wfile.write(body)

    def _snapshot(self) -> None:
        board = self.server.board
        got = board.wait_newer(0, timeout=SNAPSHOT_WAIT_S)
        if got is None:
            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            return
        self._send_headers("image/jpeg", len(got[1]))
        self.wfile.write(got[1])

    def _stream(self) -> None:
        board = self.server.board
        self._send_headers(f"multipart/x-mixed-replace; boundary={BOUNDARY}", None)
        board.add_viewer(+1)
        try:
            seq = 0
            while not board.closed:
                got = board.wait_newer(seq, timeout=POLL_S)
                if got is None:
                    continue
                seq, jpeg = got
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
                self.wfile.write(head + jpeg + b"\r\n")
        finally:
            board.add_viewer(-1)

    def _send_headers(self, content_type: str, length: int | None) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store, no-cache, must-revalidate")
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()


class MjpegServer(ThreadedOutput):
    """The MJPEG output. `start()` binds (raising OSError when the port is taken); `address`
    gives the bound (host, port); `url(path)` a URL to it with the token."""

    name = "mjpeg"

    def __init__(self, settings: MjpegSettings = MjpegSettings()) -> None:
        super().__init__()
        if not 1 <= settings.quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {settings.quality}")
        self.settings = settings
        self.board = FrameBoard(settings.quality)
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the MJPEG server is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def url(self, path: str = "/") -> str:
        """http://HOST:PORT/path[?token=...]; a wildcard bind is reached via loopback."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        query = "" if self.settings.token is None else urllib.parse.urlencode({"token": self.settings.token})
        return urllib.parse.urlunsplit(("http", netloc, path, query, ""))

    def _open(self) -> None:
        s = self.settings
        self._server = _Server((s.host, s.port), self.board, s)
        self._serve_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": POLL_S},
                                              name="holocap-mjpeg-http", daemon=True)
        self._serve_thread.start()
        logger.info("MJPEG stream at %s", self.url("/stream.mjpg"))
        if s.host not in ("127.0.0.1", "localhost", "::1") and s.token is None:
            logger.warning("MJPEG server listens on %s without a token: anyone on the network can watch", s.host)

    def _deliver(self, item: OutputItem) -> None:
        self.board.publish(item.image)

    @property
    def frames_encoded(self) -> int:
        return self.board.encoded

    def _release(self) -> None:
        self.board.close()
        if self._server is not None:
            self._server.shutdown()  # stops serve_forever within POLL_S
            self._server.shutdown_connections()
            self._server.server_close()  # joins the handler threads
            self._server = None
        if self._serve_thread is not None:
            self._serve_thread.join(1.0)
