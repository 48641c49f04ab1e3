"""Manifest parsing and validation: every error names the entry."""
from __future__ import annotations

import pytest

from engine.weights.errors import WeightsError
from engine.weights.manifest import find_model, load_manifest, parse_manifest
from tests.engine.weights.helpers import model_toml

GOOD_SHA = "a" * 64


def test_repository_manifest_is_valid(monkeypatch) -> None:
    monkeypatch.delenv("HOLOCAP_MANIFEST", raising=False)
    entries = load_manifest()  # the real weights/manifest.toml, with everyone's entries
    assert len({e.name for e in entries}) == len(entries)
    for entry in entries:
        assert entry.files and all(f.path and not f.path.startswith("/") for f in entry.files)


def test_parses_fields(write_manifest) -> None:
    path = write_manifest(model_toml("m1", [
        {"key": "checkpoint", "path": "m/a.pth", "urls": ["https://example.org/a.pth", "http://mirror/a.pth"],
         "sha256": GOOD_SHA.upper(), "size": 12},
        {"key": "stats", "path": "m/b.pkl", "urls": []}]))
    (entry,) = load_manifest(path)
    assert (entry.name, entry.backend, entry.licence) == ("m1", "tddfa", "MIT (test)")
    assert entry.file("checkpoint").urls == ("https://example.org/a.pth", "http://mirror/a.pth")
    assert entry.file("checkpoint").sha256 == GOOD_SHA  # normalised to lower case
    assert entry.file("stats").size == 0 and entry.file("stats").sha256 == ""
    assert find_model([entry], "m1") is entry
    with pytest.raises(WeightsError, match=r"unknown model 'm2' \(known: m1\)"):
        find_model([entry], "m2")


@pytest.mark.parametrize("file, pattern", [
    ({"key": "k", "path": "a.pth", "urls": [], "sha256": "xyz"}, "sha256 must be 64 hex digits"),
    ({"key": "k", "path": "../a.pth", "urls": []}, "path must be relative"),
    ({"key": "k", "path": "/abs/a.pth", "urls": []}, "path must be relative"),
    ({"key": "k", "path": "a.pth", "urls": ["ftp://x/a.pth"]}, "urls must be http"),
    ({"key": "k", "path": "a.pth", "urls": [], "size": -1}, "size must be >= 0"),
])
def test_bad_file_fields_name_the_entry(file: dict, pattern: str) -> None:
    import tomllib

    data = tomllib.loads(model_toml("broken-model", [file]))
    with pytest.raises(WeightsError, match=pattern) as info:
        parse_manifest(data)
    assert "model 'broken-model'" in str(info.value)


def test_structural_errors() -> None:
    import tomllib

    with pytest.raises(WeightsError, match="missing field 'licence'"):
        parse_manifest({"models": [{"name": "x", "backend": "tddfa", "description": "", "files": []}]})
    with pytest.raises(WeightsError, match="unknown field 'sha265'"):
        parse_manifest({"models": [{"name": "x", "backend": "tddfa", "licence": "", "description": "",
                                    "files": [{"key": "k", "path": "p", "urls": [], "sha256": "", "size": 0,
                                               "sha265": ""}]}]})
    twice = tomllib.loads(model_toml("dup", [{"key": "k", "path": "p"}]) * 2)
    with pytest.raises(WeightsError, match="'dup' appears twice"):
        parse_manifest(twice)
    with pytest.raises(WeightsError, match="at least one"):
        parse_manifest({"models": [{"name": "x", "backend": "tddfa", "licence": "", "description": "", "files": []}]})
    with pytest.raises(WeightsError, match="size' must be int"):
        parse_manifest(tomllib.loads(model_toml("x", [{"key": "k", "path": "p"}]).replace("size = 0", 'size = "0"')))


def test_unreadable_manifest(tmp_path) -> None:
    with pytest.raises(WeightsError, match="manifest not found"):
        load_manifest(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[models]\nname = ")
    with pytest.raises(WeightsError, match="not valid TOML"):
        load_manifest(bad)
