"""weights/manifest.toml: which third-party files the paper back-ends use, where they come
from and how to check them. See the file's header for the format."""
from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from engine.paths import assets_dir
from engine.weights.errors import WeightsError

log = logging.getLogger(__name__)

KNOWN_BACKENDS = frozenset({"tddfa", "bfm", "hmr", "pointhmr", "smpl", "pifu", "monoport"})
_MODEL_KEYS = {"name": str, "backend": str, "licence": str, "description": str, "files": list}
_OPTIONAL_MODEL_KEYS = {"homepage": str, "notes": str}
_FILE_KEYS = {"key": str, "path": str, "urls": list, "sha256": str, "size": int}
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class FileEntry:
    """One file of a model.

    key: how the back-end asks for it ("checkpoint", "mean_std", ...).
    path: relative (POSIX) path under engine.paths.weights_dir().
    urls: download URLs, tried in order (empty: the user must import the file, e.g. SMPL).
    sha256: lowercase hex, or "" when unknown (trust on first use).
    size: bytes, 0 when unknown.
    """

    key: str
    path: str
    urls: tuple[str, ...]
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelEntry:
    """A named set of files used by one back-end (tddfa | bfm | hmr | smpl | pifu | monoport)."""

    name: str
    backend: str
    licence: str
    description: str
    files: tuple[FileEntry, ...]
    homepage: str = ""

    def file(self, key: str) -> FileEntry:
        for f in self.files:
            if f.key == key:
                return f
        raise KeyError(f"{self.name} has no file with key {key!r} (keys: {', '.join(f.key for f in self.files)})")

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def manifest_path() -> Path:
    """weights/manifest.toml in the repository, or $HOLOCAP_MANIFEST (tests, custom setups)."""
    override = os.environ.get("HOLOCAP_MANIFEST")
    return Path(override) if override else assets_dir() / "manifest.toml"


def _check_fields(table: dict[str, Any], required: dict[str, type], optional: dict[str, type], where: str) -> None:
    for key, kind in required.items():
        if key not in table:
            raise WeightsError(f"{where}: missing field '{key}'")
    for key, value in table.items():
        kind = required.get(key) or optional.get(key)
        if kind is None:
            allowed = ", ".join([*required, *optional])
            raise WeightsError(f"{where}: unknown field '{key}' (allowed: {allowed})")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise WeightsError(f"{where}: field '{key}' must be {kind.__name__}, got {type(value).__name__}")


def _parse_file(table: Any, where: str) -> FileEntry:
    if not isinstance(table, dict):
        raise WeightsError(f"{where}: each [[models.files]] must be a table")
    _check_fields(table, _FILE_KEYS, {}, where)
    path = PurePosixPath(table["path"])
    if not table["path"] or path.is_absolute() or ".." in path.parts or "\\" in table["path"]:
        raise WeightsError(f"{where}: path must be relative without '..', got {table['path']!r}")
    for url in table["urls"]:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WeightsError(f"{where}: urls must be http(s) URLs, got {url!r}")
    sha = table["sha256"]
    if sha and not _SHA256_RE.match(sha):
        raise WeightsError(f"{where}: sha256 must be 64 hex digits or \"\", got {sha!r}")
    if table["size"] < 0:
        raise WeightsError(f"{where}: size must be >= 0, got {table['size']}")
    return FileEntry(table["key"], str(path), tuple(table["urls"]), sha.lower(), int(table["size"]))


def _parse_model(table: Any, position: int, source: str) -> ModelEntry:
    label = table.get("name") if isinstance(table, dict) else None
    where = f"{source}: model '{label}'" if isinstance(label, str) else f"{source}: [[models]] #{position + 1}"
    if not isinstance(table, dict):
        raise WeightsError(f"{where}: must be a table")
    _check_fields(table, _MODEL_KEYS, _OPTIONAL_MODEL_KEYS, where)
    if not _NAME_RE.match(table["name"]):
        raise WeightsError(f"{where}: name must be letters, digits, '.', '_' or '-'")
    if table["backend"] not in KNOWN_BACKENDS:
        # Not fatal: a new back-end may add entries before this list learns its name.
        log.warning("%s: unknown backend %r (known: %s)", where, table["backend"], ", ".join(sorted(KNOWN_BACKENDS)))
    if not table["files"]:
        raise WeightsError(f"{where}: needs at least one [[models.files]]")
    files = tuple(_parse_file(f, f"{where}, file #{i + 1}") for i, f in enumerate(table["files"]))
    keys = [f.key for f in files]
    if len(set(keys)) != len(keys):
        raise WeightsError(f"{where}: file keys must be unique, got {keys}")
    return ModelEntry(table["name"], table["backend"], table["licence"], table["description"], files,
                      table.get("homepage", ""))


def parse_manifest(data: dict[str, Any], source: str = "manifest") -> list[ModelEntry]:
    """Entries from a parsed TOML document. Raises WeightsError naming the bad entry."""
    models = data.get("models", [])
    if not isinstance(models, list):
        raise WeightsError(f"{source}: 'models' must be an array of tables ([[models]])")
    entries = [_parse_model(table, i, source) for i, table in enumerate(models)]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise WeightsError(f"{source}: model name '{entry.name}' appears twice")
        seen.add(entry.name)
    return entries


def load_manifest(path: Path | None = None) -> list[ModelEntry]:
    """Read and validate the manifest (default: weights/manifest.toml in the repository)."""
    path = Path(path) if path is not None else manifest_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise WeightsError(f"manifest not found: {path}") from exc
    except OSError as exc:
        raise WeightsError(f"cannot read manifest {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"manifest {path} is not valid TOML: {exc}") from exc
    return parse_manifest(data, path.name)


def find_model(entries: list[ModelEntry], name: str) -> ModelEntry:
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise WeightsError(f"unknown model '{name}' (known: {known})")
