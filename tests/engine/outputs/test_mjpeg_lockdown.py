"""The MJPEG server locked down: Host check, bounded request heads, a client cap that a flood
of idle connections cannot use to lock real viewers out, and no token in any log."""
from __future__ import annotations

import logging
import os
import socket
import time
import urllib.request

import numpy as np
import pytest

from engine.logs import setup_logging
from engine.outputs.http_guard import host_allowed
from engine.outputs.mjpeg import MjpegServer, MjpegSettings


def _request(address, head: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(head)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


@pytest.fixture
def server():
    srv = MjpegServer(MjpegSettings(port=0))
    srv.start()
    srv.send(np.full((48, 64, 3), 128, np.uint8), 0, 0.0)
    time.sleep(0.2)
    yield srv
    srv.close()


@pytest.mark.parametrize("host, bound, ok", [
    ("127.0.0.1:8080", "127.0.0.1", True), ("localhost:8080", "127.0.0.1", True),
    ("[::1]:8080", "::1", True), ("evil.example:8080", "127.0.0.1", False),
    ("evil.example", "0.0.0.0", False), ("192.168.1.20:8080", "0.0.0.0", True),
    ("192.168.1.20:8080", "127.0.0.1", False), ("", "127.0.0.1", True),
])
def test_host_allowed(host, bound, ok):
    assert host_allowed(host, bound) is ok


def test_a_rebinding_host_header_gets_403_and_the_bound_address_200(server):
    host, port = server.address
    bad = _request(server.address, f"GET /snapshot.jpg HTTP/1.1\r\nHost: attacker.example:{port}\r\n\r\n".encode())
    assert bad.startswith(b"HTTP/1.0 403")
    good = _request(server.address, f"GET /snapshot.jpg HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    assert good.startswith(b"HTTP/1.0 200")


def test_a_token_or_lan_mode_lifts_the_host_check():
    for settings in (MjpegSettings(port=0, token="s3cret"), MjpegSettings(port=0, lan=True)):
        srv = MjpegServer(settings)
        srv.start()
        try:
            srv.send(np.zeros((48, 64, 3), np.uint8), 0, 0.0)
            time.sleep(0.2)
            query = "?token=s3cret" if settings.token else ""
            reply = _request(srv.address, f"GET /snapshot.jpg{query} HTTP/1.1\r\nHost: mypc.local\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.0 200"), reply[:80]
        finally:
            srv.close()


def test_a_huge_request_head_is_refused(server):
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"a" * 60_000 + b"\r\n\r\n"
    reply = _request(server.address, head)
    assert reply.startswith(b"HTTP/1.0 431") or reply == b""
    many = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(2000)) + b"\r\n"
    reply = _request(server.address, many)
    assert reply.startswith(b"HTTP/1.0 431") or reply == b""
    assert _request(server.address, b"GET /snapshot.jpg HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")


def test_200_idle_connections_leave_a_real_client_answered_within_1_s(server):
    flood = []
    try:
        for _ in range(200):
            flood.append(socket.create_connection(server.address, timeout=5))
        time.sleep(0.3)
        t0 = time.monotonic()
        with urllib.request.urlopen(server.url("/snapshot.jpg"), timeout=5) as reply:
            assert reply.status == 200 and reply.read(2) == b"\xff\xd8"
        assert time.monotonic() - t0 < 1.0
    finally:
        for s in flood:
            s.close()


def test_more_viewers_than_the_cap_get_503_not_a_hang():
    srv = MjpegServer(MjpegSettings(port=0, max_clients=4))
    srv.start()
    viewers = []
    try:
        for _ in range(4):
            s = socket.create_connection(srv.address, timeout=5)
            s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            viewers.append(s)
        time.sleep(0.3)
        t0 = time.monotonic()
        reply = _request(srv.address, b"GET /snapshot.jpg HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.0 503") and time.monotonic() - t0 < 1.0
    finally:
        for s in viewers:
            s.close()
        srv.close()


def test_the_token_is_in_no_log_and_the_log_file_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCAP_LOG_DIR", str(tmp_path / "logs"))
    saved = list(logging.getLogger().handlers)  # pytest's own; setup_logging replaces them
    path = setup_logging("DEBUG")
    try:
        srv = MjpegServer(MjpegSettings(port=0, token="hunter2-token"))
        srv.start()
        try:
            srv.send(np.zeros((48, 64, 3), np.uint8), 0, 0.0)
            time.sleep(0.2)
            with urllib.request.urlopen(srv.url("/snapshot.jpg"), timeout=5) as reply:
                assert reply.status == 200
            logging.getLogger("test").info("user pasted %s", srv.url("/stream.mjpg"))
        finally:
            srv.close()
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = path.read_text()
        assert "mjpeg" in text.lower() and "token=<hidden>" in text
        assert "hunter2-token" not in text
        assert os.stat(path).st_mode & 0o777 == 0o600
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
        for handler in saved:
            logging.getLogger().addHandler(handler)
