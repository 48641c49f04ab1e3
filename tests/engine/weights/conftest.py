"""A real HTTP server on 127.0.0.1 and a temp manifest / weights dir for the weights tests."""
from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Route:
    """What the server answers for one path: a body, optionally cut short or delayed."""

    body: bytes = b""
    status: int = 200
    truncate_to: int | None = None  # send Content-Length of the full body, then only this many bytes
    delay_s: float = 0.0


@dataclass
class FileServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def serve(self, path: str, body: bytes, **kwargs) -> str:
        self.routes[path] = Route(body, **kwargs)
        return self.url(path)


def _handler(server_state: FileServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server_state.hits.append(self.path)
            route = server_state.routes.get(self.path)
            if route is None or route.status != 200:
                self.send_error(route.status if route else 404)
                return
            if route.delay_s:
                time.sleep(route.delay_s)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            body = route.body if route.truncate_to is None else route.body[:route.truncate_to]
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up (timeout test)
            if route.truncate_to is not None:
                self.close_connection = True

        def log_message(self, format: str, *args) -> None:  # keep test output clean
            return

    return Handler


@pytest.fixture(scope="module")
def _http_server() -> Iterator[FileServer]:
    state = FileServer("")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server(_http_server: FileServer) -> FileServer:
    _http_server.routes.clear()
    _http_server.hits.clear()
    return _http_server


@pytest.fixture
def weights_root(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "installed"
    monkeypatch.setenv("HOLOCAP_WEIGHTS_DIR", str(root))
    return root


@pytest.fixture
def write_manifest(tmp_path: Path, monkeypatch):
    """write_manifest(text) -> Path; also points HOLOCAP_MANIFEST at it."""
    def _write(text: str) -> Path:
        path = tmp_path / "manifest.toml"
        path.write_text(text)
        monkeypatch.setenv("HOLOCAP_MANIFEST", str(path))
        return path

    return _write
