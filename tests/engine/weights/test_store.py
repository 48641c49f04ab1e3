"""Installed / missing / corrupt states, the hash cache, and verify()."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.weights import store
from engine.weights.fetch import fetch, verify
from engine.weights.store import CACHE_NAME, all_statuses, model_status
from tests.engine.weights.helpers import model_toml, sha256

DATA_A = b"checkpoint bytes " * 1000
DATA_B = b"statistics " * 100


@pytest.fixture
def installed(server, weights_root, write_manifest) -> Path:
    """Model "two" (two files with hashes) fetched from the local server."""
    write_manifest(model_toml("two", [
        {"key": "checkpoint", "path": "two/a.pth", "urls": [server.serve("/a", DATA_A)], "sha256": sha256(DATA_A),
         "size": len(DATA_A)},
        {"key": "stats", "path": "two/b.pkl", "urls": [server.serve("/b", DATA_B)], "sha256": sha256(DATA_B),
         "size": len(DATA_B)}]) + model_toml("absent", [{"key": "k", "path": "absent/x.bin", "urls": ["http://x/y"]}]))
    assert fetch("two").state == "installed"
    return weights_root


def _flip(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_installed_paths(installed: Path) -> None:
    status = model_status("two")
    assert status.state == "installed"
    assert status.paths == {"checkpoint": installed / "two/a.pth", "stats": installed / "two/b.pkl"}
    assert "sha256 verified" in status.message


def test_flipped_byte_is_corrupt(installed: Path) -> None:
    _flip(installed / "two/a.pth")  # same size, right after install: the cache must not vouch for it
    status = model_status("two")
    assert status.state == "corrupt" and status.paths == {}
    assert "two/a.pth is corrupt" in status.message and "offline default" in status.message
    assert "weights fetch two" in status.message and "\n" not in status.message
    # verify agrees, and a fetch repairs it.
    assert [s.state for s in verify("two")] == ["corrupt"]
    assert fetch("two").state == "installed"


def test_rewrite_within_one_timestamp_tick_is_caught(installed: Path) -> None:
    # Coarse file-system clocks can give a rewrite the same mtime as the install; the cache
    # record (hashed just after that mtime) must then not vouch for the file.
    path = installed / "two/a.pth"
    stat = path.stat()
    _flip(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_status("two").state == "corrupt"


def test_truncated_file_is_corrupt_by_size(installed: Path) -> None:
    path = installed / "two/b.pkl"
    path.write_bytes(path.read_bytes()[:50])
    status = model_status("two")
    assert status.state == "corrupt" and "50 bytes, expected" in status.message


def test_missing_states(installed: Path) -> None:
    (installed / "two/b.pkl").unlink()
    status = model_status("two")
    assert status.state == "missing" and "weights fetch two" in status.message
    unknown = model_status("no-such-model")
    assert unknown.state == "missing" and "unknown model 'no-such-model'" in unknown.message
    assert [s.state for s in all_statuses()] == ["missing", "missing"]


def test_cache_avoids_rehash_until_file_changes(installed: Path, monkeypatch) -> None:
    path = installed / "two/a.pth"
    old = path.stat().st_mtime_ns - 3_600 * 10**9
    os.utime(path, ns=(old, old))  # an hour-old file: hashed once more, then cached
    assert model_status("two").state == "installed"
    record = json.loads((installed / CACHE_NAME).read_text())["two/a.pth"]
    assert record["sha256"] == sha256(DATA_A) and record["mtime_ns"] == old

    hashed: list[Path] = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p, progress=None: hashed.append(p) or real(p))
    assert model_status("two").state == "installed"
    assert path not in hashed  # trusted from the cache
    assert [s.state for s in verify("two")] == ["installed"]
    assert path in hashed  # verify always re-hashes
    # Corruption that keeps size and mtime is invisible to the cache but not to verify.
    _flip(path)
    os.utime(path, ns=(old, old))
    assert model_status("two").state == "installed"
    assert [s.state for s in verify("two")] == ["corrupt"]


def test_unreadable_cache_is_ignored(installed: Path) -> None:
    (installed / CACHE_NAME).write_text("{not json")
    assert model_status("two").state == "installed"


def test_manifest_error_is_missing_not_a_crash(write_manifest, weights_root) -> None:
    write_manifest("[[models]]\nname = 'x'\n")
    status = model_status("x")
    assert status.state == "missing" and "missing field" in status.message


def test_missing_message_says_which_files_to_import_and_which_to_fetch(weights_root, write_manifest) -> None:
    # A model like PointHMR: a checkpoint the user must import, data files that can be fetched.
    write_manifest(model_toml("mixed", [
        {"key": "checkpoint", "path": "mixed/net.bin", "urls": []},
        {"key": "mesh_data", "path": "mixed/mesh.npz", "urls": ["http://example.invalid/mesh.npz"]}]))
    message = model_status("mixed").message
    assert "get its checkpoint file (installed as net.bin) from its publisher" in message
    assert "weights import PATH --name mixed" in message and "for the rest, run `python main.py weights fetch mixed`" in message
    (weights_root / "mixed").mkdir(parents=True)
    (weights_root / "mixed/net.bin").write_bytes(b"imported")
    message = model_status("mixed").message
    assert "weights fetch mixed" in message and "import" not in message
