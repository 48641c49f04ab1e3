"""The MJPEG server with Python clients: frame rate, token, snapshot, page, rude clients, shutdown."""
from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from engine.outputs.mjpeg import MjpegServer, MjpegSettings, parse_host_port
from engine.outputs.mjpeg_client import free_local_port, read_mjpeg, wait_for_stream
from tests.engine.outputs.synthetic import Feeder, decode_index


@pytest.fixture
def server():
    srv = MjpegServer(MjpegSettings(port=0))
    srv.start()
    yield srv
    srv.close()


def test_binds_loopback_and_a_free_port_by_default(server):
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    assert server.url("/stream.mjpg") == f"http://127.0.0.1:{port}/stream.mjpg"


def test_client_receives_at_least_20_frames_in_3_s_in_order(server):
    with Feeder(server.send, fps=30.0) as feeder:
        parts = read_mjpeg(server.url("/stream.mjpg"), duration_s=3.0)
    assert len(parts) >= 20, f"{len(parts)} frames in 3 s (sent {feeder.sent})"
    indices = [decode_index(p.decode()) for p in parts]
    assert all(b > a for a, b in zip(indices, indices[1:])), indices  # newest first, never repeated
    assert indices[-1] < feeder.sent


def test_frames_are_encoded_once_for_all_clients(server):
    results: list[list] = [[], []]

    def watch(k: int) -> None:
        results[k] = read_mjpeg(server.url("/stream.mjpg"), duration_s=2.0)

    with Feeder(server.send, fps=30.0):
        threads = [threading.Thread(target=watch, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len(results[0]) >= 10 and len(results[1]) >= 10
    # Every part both clients saw was produced by one encode; more encodes than frames would
    # mean per-client encoding.
    assert server.frames_encoded <= server.stats.delivered
    both = {p.jpeg for p in results[0]} & {p.jpeg for p in results[1]}
    assert len(both) >= 5  # identical bytes: the same encoded frame went to both


def test_nothing_is_encoded_without_viewers(server):
    with Feeder(server.send, fps=60.0) as feeder:
        time.sleep(0.3)
    assert feeder.sent > 5 and server.frames_encoded == 0


def test_snapshot_and_page(server):
    with Feeder(server.send, fps=30.0):
        with urllib.request.urlopen(server.url("/snapshot.jpg"), timeout=5) as r:
            assert r.headers["Content-Type"] == "image/jpeg"
            jpeg = r.read()
        with urllib.request.urlopen(server.url("/"), timeout=5) as r:
            page = r.read().decode()
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    assert "<img" in page and "src='stream.mjpg'" in page


def test_snapshot_before_any_frame_is_503(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url("/snapshot.jpg"), timeout=5)
    assert info.value.code == 503


def test_token_is_required_everywhere():
    srv = MjpegServer(MjpegSettings(token="s3cr&t"))
    srv.start()
    try:
        base = f"http://127.0.0.1:{srv.address[1]}"
        for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/stream.mjpg?token=wrong"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(base + path, timeout=5)
            assert info.value.code == 403, path
        with Feeder(srv.send, fps=30.0):
            assert srv.url("/stream.mjpg").endswith("?token=s3cr%26t")
            assert len(read_mjpeg(srv.url("/stream.mjpg"), duration_s=0.5)) >= 3
            with urllib.request.urlopen(srv.url("/"), timeout=5) as r:
                page = r.read().decode()
        assert "stream.mjpg?token=s3cr%26t" in page  # the page's <img> carries the token
    finally:
        srv.close()


def test_unknown_path_is_404(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url("/nope"), timeout=5)
    assert info.value.code == 404


def test_rude_clients_do_not_break_the_server(server):
    host, port = server.address
    with Feeder(server.send, fps=30.0):
        for _ in range(5):  # connect, read a little of the stream, vanish
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            assert s.recv(1000).startswith(b"HTTP/1.0 200")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()
        silent = socket.create_connection((host, port), timeout=5)  # connects, says nothing
        parts = read_mjpeg(server.url("/stream.mjpg"), duration_s=1.0)
    assert len(parts) >= 10
    silent.close()


def test_close_ends_streams_and_frees_the_port():
    srv = MjpegServer()
    srv.start()
    host, port = srv.address
    idle = socket.create_connection((host, port), timeout=5)  # a client that never sends a request
    streaming = socket.create_connection((host, port), timeout=5)
    streaming.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
    with Feeder(srv.send, fps=30.0):
        assert streaming.recv(100).startswith(b"HTTP/1.0 200")
        srv.close()
    streaming.settimeout(5)
    while streaming.recv(65536):  # drains to end-of-stream: the server closed it
        pass
    assert idle.recv(10) == b""
    idle.close()
    streaming.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=2)
    assert not [t for t in threading.enumerate() if t.name.startswith(("holocap-mjpeg", "holocap-output-mjpeg"))]


def test_wait_for_stream_retries_until_the_server_is_up():
    port = free_local_port()  # the server starts on it only after the client began trying
    srv = MjpegServer(MjpegSettings(port=port))
    timer = threading.Timer(0.5, srv.start)
    timer.start()
    try:
        with Feeder(srv.send, fps=30.0):  # frames sent before the start are dropped, as designed
            parts = wait_for_stream(f"http://127.0.0.1:{port}/stream.mjpg", timeout_s=10, duration_s=0.5)
        assert len(parts) >= 3
    finally:
        timer.join()
        srv.close()


def test_wait_for_stream_gives_up():
    with pytest.raises(TimeoutError, match="no MJPEG server"):
        wait_for_stream(f"http://127.0.0.1:{free_local_port()}/stream.mjpg", timeout_s=0.3)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("0.0.0.0:0", ("0.0.0.0", 0)), (":9000", ("127.0.0.1", 9000)),
    ("9000", ("127.0.0.1", 9000)), ("localhost:80", ("localhost", 80)), ("[::1]:8080", ("::1", 8080)),
])
def test_parse_host_port(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:http", "1.2.3.4:70000", "::1:8080", "[::1]8080", "a:-1"])
def test_parse_host_port_rejects(text):
    with pytest.raises(ValueError):
        parse_host_port(text)
