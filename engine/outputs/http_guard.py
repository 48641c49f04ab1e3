"""Small guards for the HTTP outputs: address parsing, Host checks, bounded request heads."""
from __future__ import annotations

import http.client
import ipaddress
from typing import BinaryIO


def parse_host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Parse the CLI's `--serve-mjpeg HOST:PORT` ("0.0.0.0:8080", ":8080", "8080", "[::1]:8080").

    Returns (host, port) with 0 <= port <= 65535; raises ValueError with a clear message.
    """
    text = text.strip()
    host, port_text = default_host, text
    if text.startswith("["):  # [IPv6]:PORT
        end = text.find("]")
        if end < 0 or not text[end + 1:].startswith(":"):
            raise ValueError(f"expected [IPV6]:PORT, got {text!r}")
        host, port_text = text[1:end], text[end + 2:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"write IPv6 addresses in brackets, e.g. [::1]:8080, got {text!r}")
        host = host or default_host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port in 0..65535, got {text!r}")
    return host, int(port_text)


_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Is a request's Host header one that this machine's own server answers to?

    Accepted: the bound address, localhost, and (for a wildcard bind) any IP literal; a
    DNS name other than localhost is what a rebinding attack sends, so it is refused."""
    if not host_header:
        return True  # HTTP/1.0 tools (curl -0, scripts) may omit it; browsers never do
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host in _LOCAL_NAMES or host == bound_host.lower():
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if bound_host in ("0.0.0.0", "::", ""):
        return True
    return address.is_loopback


class BoundedReader:
    """The request's input stream, refusing (as LineTooLong, which the stdlib handler
    answers with 431) a request head longer than `limit` bytes."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw, self.left = raw, limit

    def readline(self, size: int = -1) -> bytes:
        line = self._raw.readline(self.left + 1 if size < 0 else min(size, self.left + 1))
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong("request head too long")
        return line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def close(self) -> None:
        self._raw.close()
