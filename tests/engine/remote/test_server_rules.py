"""The server's rules, without starting Ray: who may bind where, and the token check."""
from __future__ import annotations

import pytest

from engine.remote.errors import ServeError
from engine.remote.server import ServeOptions, check_options, is_loopback, token_status


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.4", False),
                                            ("gpu-box.local", False), ("::", False)])
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_token():
    check_options(ServeOptions(host="127.0.0.1"))
    check_options(ServeOptions(host="0.0.0.0", token="t"))
    with pytest.raises(ServeError, match="--token"):
        check_options(ServeOptions(host="0.0.0.0"))
    with pytest.raises(ServeError, match="perception stays"):
        check_options(ServeOptions(stages=("perception",)))
    with pytest.raises(ServeError, match="--replicas"):
        check_options(ServeOptions(replicas=0))


def test_token_status():
    assert token_status(None, None) is None  # no token configured: loopback only
    assert token_status("abc", None) == 401
    assert token_status("abc", "Basic abc") == 401
    assert token_status("abc", "Bearer abd") == 403
    assert token_status("abc", "Bearer ab") == 403
    assert token_status("abc", "Bearer abc") is None


def test_a_port_in_use_is_refused_before_ray_starts():
    import socket

    from engine.remote.server import check_port_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError, match=f"127.0.0.1:{port}.*choose --port"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again
