"""A minimal MJPEG stream reader, for tests, end-to-end checks and `curl`-less diagnosis.

`read_mjpeg(url, duration_s=3)` connects to a multipart/x-mixed-replace stream (such as
`MjpegServer`'s /stream.mjpg) and returns the JPEG parts received within the duration.
"""
from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MjpegPart:
    """One part of the stream: jpeg bytes and the client's time.monotonic() at receipt (s)."""

    jpeg: bytes
    t_received: float

    def decode(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR; raises ValueError when the bytes are not a JPEG."""
        image = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("stream part is not a decodable JPEG")
        return image


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/x-mixed-replace":
        raise ValueError(f"not an MJPEG stream: Content-Type {content_type!r}")
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise ValueError(f"MJPEG stream without a boundary: {content_type!r}")


def _read_part(stream: BinaryIO, boundary: bytes) -> bytes | None:
    """The next part's body, or None at the end of the stream."""
    delimiter = b"--" + boundary
    while True:  # skip to the delimiter line
        line = stream.readline()
        if not line:
            return None
        if line.strip() == delimiter:
            break
    length = None
    while True:  # part headers up to the blank line
        line = stream.readline()
        if not line:
            return None
        if not line.strip():
            break
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("MJPEG part without Content-Length (this reader needs it)")
    body = stream.read(length)
    return body if len(body) == length else None


def read_mjpeg(url: str, duration_s: float = 3.0, max_parts: int | None = None,
               timeout_s: float = 5.0) -> list[MjpegPart]:
    """Read parts from an MJPEG stream for `duration_s` seconds (from connecting) or until
    `max_parts` arrived or the stream ended. timeout_s: socket timeout per read."""
    parts: list[MjpegPart] = []
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        boundary = _boundary(response.headers.get("Content-Type", ""))
        t_end = time.monotonic() + duration_s
        while time.monotonic() < t_end and (max_parts is None or len(parts) < max_parts):
            body = _read_part(response, boundary)
            if body is None:
                logger.debug("MJPEG stream %s ended after %d parts", url, len(parts))
                break
            now = time.monotonic()
            if now > t_end:
                break
            parts.append(MjpegPart(body, now))
    return parts


def wait_for_stream(url: str, timeout_s: float = 30.0, duration_s: float = 3.0) -> list[MjpegPart]:
    """Keep trying to connect until the server answers (e.g. a `main.py run --serve-mjpeg`
    child process still starting), then `read_mjpeg(url, duration_s)`.

    Raises TimeoutError when nothing answered within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read_mjpeg(url, duration_s=duration_s)
        except urllib.error.URLError as exc:  # refused: not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"no MJPEG server answered at {url} within {timeout_s} s: {exc}") from exc
            time.sleep(0.2)


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for starting a server in a child
    process at a known address; another process could take it in between)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
