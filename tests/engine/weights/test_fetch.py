"""Downloads from a real HTTP server on 127.0.0.1: good, wrong hash, truncated, 404 then a
mirror, timeouts. Nothing but a verified file may ever appear at the installed path."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.weights.errors import WeightsError
from engine.weights.fetch import fetch
from engine.weights.store import model_status
from tests.engine.weights.helpers import model_toml, sha256

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # > 3 chunks, so progress is reported several times


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def _one_file_model(write_manifest, urls: list[str], sha: str, size: int, name: str = "net") -> None:
    write_manifest(model_toml(name, [{"key": "checkpoint", "path": "nets/net.pth", "urls": urls,
                                      "sha256": sha, "size": size}]))


def test_good_fetch_installs_and_reports_progress(server, weights_root, write_manifest) -> None:
    _one_file_model(write_manifest, [server.serve("/net.pth", PAYLOAD)], sha256(PAYLOAD), len(PAYLOAD))
    assert model_status("net").state == "missing"
    calls: list[tuple[str, int, int]] = []
    status = fetch("net", progress=lambda label, done, total: calls.append((label, done, total)))
    assert status.state == "installed" and not status.trusted_on_first_use
    assert status.paths == {"checkpoint": weights_root / "nets/net.pth"}
    assert (weights_root / "nets/net.pth").read_bytes() == PAYLOAD
    assert calls[0] == ("nets/net.pth", 0, len(PAYLOAD)) and calls[-1] == ("nets/net.pth", len(PAYLOAD), len(PAYLOAD))
    assert len(calls) >= 4 and all(a[1] <= b[1] for a, b in zip(calls, calls[1:]))
    assert _leftovers(weights_root) == []
    # Installed and intact: a second fetch downloads nothing.
    server.hits.clear()
    assert fetch("net").state == "installed" and server.hits == []


def test_wrong_hash_installs_nothing(server, weights_root, write_manifest) -> None:
    wrong = "0" * 64
    _one_file_model(write_manifest, [server.serve("/net.pth", PAYLOAD)], wrong, 0)
    with pytest.raises(WeightsError) as info:
        fetch("net")
    message = str(info.value)
    assert f"sha256 mismatch for nets/net.pth: expected {wrong}, got {sha256(PAYLOAD)}" in message
    assert "\n" not in message
    assert not (weights_root / "nets/net.pth").exists()
    assert _leftovers(weights_root) == []
    assert model_status("net").state == "missing"


def test_size_mismatch_installs_nothing(server, weights_root, write_manifest) -> None:
    _one_file_model(write_manifest, [server.serve("/net.pth", PAYLOAD)], "", len(PAYLOAD) + 1)
    with pytest.raises(WeightsError, match=f"size mismatch for nets/net.pth: expected {len(PAYLOAD) + 1} bytes"):
        fetch("net")
    assert not (weights_root / "nets/net.pth").exists() and _leftovers(weights_root) == []


def test_truncated_response_installs_nothing(server, weights_root, write_manifest) -> None:
    # Content-Length promises the whole file; the connection closes after a third of it. The
    # manifest knows no hash or size, so only the length check can catch it.
    _one_file_model(write_manifest, [server.serve("/net.pth", PAYLOAD, truncate_to=len(PAYLOAD) // 3)], "", 0)
    with pytest.raises(WeightsError, match="incomplete download of nets/net.pth"):
        fetch("net")
    assert not (weights_root / "nets/net.pth").exists() and _leftovers(weights_root) == []


def test_404_then_mirror(server, weights_root, write_manifest, caplog) -> None:
    urls = [server.url("/gone.pth"), server.serve("/mirror/net.pth", PAYLOAD)]
    _one_file_model(write_manifest, urls, sha256(PAYLOAD), len(PAYLOAD))
    assert fetch("net").state == "installed"
    assert server.hits == ["/gone.pth", "/mirror/net.pth"]
    assert any("HTTP 404" in r.getMessage() for r in caplog.records)


def test_bad_hash_then_good_mirror(server, weights_root, write_manifest) -> None:
    urls = [server.serve("/bad.pth", PAYLOAD[:-1] + b"x"), server.serve("/good.pth", PAYLOAD)]
    _one_file_model(write_manifest, urls, sha256(PAYLOAD), len(PAYLOAD))
    assert fetch("net").state == "installed"
    assert (weights_root / "nets/net.pth").read_bytes() == PAYLOAD


def test_all_urls_fail(server, weights_root, write_manifest) -> None:
    _one_file_model(write_manifest, [server.url("/a"), server.url("/b"), "http://127.0.0.1:1/c"], "", 0)
    with pytest.raises(WeightsError) as info:
        fetch("net")
    message = str(info.value)
    assert message.startswith("could not fetch nets/net.pth:") and message.count("HTTP 404") == 2
    assert "cannot connect" in message and "\n" not in message


def test_stalled_server_times_out(server, weights_root, write_manifest) -> None:
    _one_file_model(write_manifest, [server.serve("/slow.pth", b"late", delay_s=2.0)], "", 0)
    with pytest.raises(WeightsError, match="timed out"):
        fetch("net", timeout=0.3)
    assert not (weights_root / "nets/net.pth").exists() and _leftovers(weights_root) == []


def test_no_url_model_says_import(weights_root, write_manifest) -> None:
    write_manifest(model_toml("smpl-neutral", [{"key": "model", "path": "smpl/SMPL_NEUTRAL.pkl"}], backend="smpl"))
    with pytest.raises(WeightsError, match="import PATH --name smpl-neutral"):
        fetch("smpl-neutral")
    status = model_status("smpl-neutral")
    assert status.state == "missing" and "weights import PATH --name smpl-neutral" in status.message


def test_trust_on_first_use(server, weights_root, write_manifest) -> None:
    _one_file_model(write_manifest, [server.serve("/net.pth", PAYLOAD)], "", 0)
    status = fetch("net")
    assert status.state == "installed" and status.trusted_on_first_use
    assert "trusted on first use" in status.message
    path = weights_root / "nets/net.pth"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    corrupt = model_status("net")
    assert corrupt.state == "corrupt" and corrupt.paths == {}
