"""Where installed weights live and whether they are intact.

A model is "installed" when every file is present and its sha256 matches the manifest (or,
for files the manifest gives no hash for, the hash recorded when the file was first
installed: trust on first use); "missing" when a file is absent; "corrupt" when one is
present but wrong. Hashes are cached per file by (size, mtime_ns) in a small JSON beside
the files, so start-up does not re-read hundreds of MB. Like git's index, a cache record is
only trusted when the file's mtime is clearly older than the moment it was hashed (a file
rewritten within the same timestamp tick would otherwise look unchanged).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.paths import weights_dir
from engine.weights.errors import WeightsError
from engine.weights.manifest import FileEntry, ModelEntry, find_model, load_manifest

log = logging.getLogger(__name__)

State = Literal["installed", "missing", "corrupt"]
CACHE_NAME = ".verified.json"
RACY_MARGIN_NS = 2_000_000_000  # mtime this close to the hashing time: hash again next time
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileStatus:
    """One file: where it is (or would be), its state, and the hash seen (when hashed)."""

    key: str
    path: Path
    state: State
    detail: str = ""
    sha256: str = ""
    trusted_on_first_use: bool = False


@dataclass(frozen=True)
class ModelStatus:
    """What a back-end needs to decide: use `paths` when state == "installed", else log
    `message` once and use the offline default."""

    name: str
    state: State
    paths: dict[str, Path] = field(default_factory=dict)
    message: str = ""
    files: tuple[FileStatus, ...] = ()
    trusted_on_first_use: bool = False


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """Streamed sha256 (lowercase hex) of a file; progress(bytes_so_far) after each MiB."""
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


def root_dir(root: Path | None = None) -> Path:
    return Path(root) if root is not None else weights_dir()


def installed_path(file: FileEntry, root: Path | None = None) -> Path:
    return root_dir(root) / file.path


class HashCache:
    """{relative path: {size, mtime_ns, sha256, hashed_ns, tofu_sha256?}} in <root>/.verified.json.

    `tofu_sha256` is the hash accepted at install time for files without a manifest hash;
    it is never replaced by a later observation (that would re-trust a corrupted file).
    """

    def __init__(self, root: Path) -> None:
        self.path = root / CACHE_NAME
        self.records: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                self.records = {k: v for k, v in data.items() if isinstance(v, dict)}
        except FileNotFoundError:
            pass  # nothing verified yet: every file is hashed on first use
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable hash cache %s (%s); files will be re-hashed", self.path, exc)

    def cached_sha(self, rel: str, stat: os.stat_result) -> str | None:
        rec = self.records.get(rel)
        if not rec or rec.get("size") != stat.st_size or rec.get("mtime_ns") != stat.st_mtime_ns:
            return None
        if int(rec.get("hashed_ns", 0)) - stat.st_mtime_ns < RACY_MARGIN_NS:
            return None
        return str(rec.get("sha256", "")) or None

    def observe(self, rel: str, stat: os.stat_result, sha: str) -> None:
        rec = self.records.setdefault(rel, {})
        rec.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=sha, hashed_ns=time.time_ns())

    def tofu(self, rel: str) -> str:
        return str(self.records.get(rel, {}).get("tofu_sha256", ""))

    def set_tofu(self, rel: str, sha: str) -> None:
        self.records.setdefault(rel, {})["tofu_sha256"] = sha

    def forget(self, rel: str) -> None:
        self.records.pop(rel, None)

    def save(self) -> None:
        """Atomic write; a cache that cannot be written only costs re-hashing later."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".verified.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(self.records, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write hash cache %s: %s", self.path, exc)


def _short(sha: str) -> str:
    return sha[:12] + "…" if sha else "(none)"


def check_file(file: FileEntry, root: Path, cache: HashCache, *, rehash: bool = False) -> FileStatus:
    """State of one installed file (hashing it unless the cache vouches for it)."""
    path = root / file.path
    try:
        stat = path.stat()
    except FileNotFoundError:
        return FileStatus(file.key, path, "missing", f"{file.path} is not installed")
    except OSError as exc:
        return FileStatus(file.key, path, "corrupt", f"{file.path} cannot be read ({exc.strerror or exc})")
    if not path.is_file():
        return FileStatus(file.key, path, "corrupt", f"{file.path} is not a regular file")
    if file.size and stat.st_size != file.size:
        return FileStatus(file.key, path, "corrupt",
                          f"{file.path} has {stat.st_size} bytes, expected {file.size} (partial or wrong file)")
    sha = None if rehash else cache.cached_sha(file.path, stat)
    if sha is None:
        try:
            sha = sha256_file(path)
        except OSError as exc:
            return FileStatus(file.key, path, "corrupt", f"{file.path} cannot be read ({exc.strerror or exc})")
        cache.observe(file.path, stat, sha)
    expected, tofu = file.sha256, False
    if not expected:
        expected, tofu = cache.tofu(file.path), True
        if not expected:
            # Present but never verified (copied in by hand): this first sighting is trusted.
            cache.set_tofu(file.path, sha)
            expected = sha
            log.info("%s has no published sha256; trusting it on first use (%s)", file.path, _short(sha))
    if sha != expected:
        return FileStatus(file.key, path, "corrupt",
                          f"{file.path} is corrupt (sha256 {_short(sha)}, expected {_short(expected)})", sha, tofu)
    return FileStatus(file.key, path, "installed", "", sha, tofu)


def _summarise(entry: ModelEntry, files: list[FileStatus]) -> ModelStatus:
    tofu = any(f.trusted_on_first_use for f in files)
    corrupt = [f for f in files if f.state == "corrupt"]
    missing = [f for f in files if f.state == "missing"]
    if corrupt:
        return ModelStatus(entry.name, "corrupt", {}, f"{entry.name}: {corrupt[0].detail}; using the offline default "
                           f"(run `python main.py weights fetch {entry.name}` to replace it)", tuple(files), tofu)
    if missing:
        by_key = {f.key: f for f in entry.files}
        manual = [f"its {m.key.replace('_', ' ')} file (installed as {m.path.name})" for m in missing
                  if not by_key[m.key].urls]
        fetch = f"run `python main.py weights fetch {entry.name}`"
        if not manual:
            hint = fetch
        else:
            source = entry.homepage or "its publisher"
            hint = f"get {', '.join(manual)} from {source} and run `python main.py weights import PATH --name {entry.name}`"
            if len(manual) < len(missing):
                hint += f"; for the rest, {fetch}"
        return ModelStatus(entry.name, "missing", {}, f"{entry.name} is not installed ({missing[0].path.name}); "
                           f"using the offline default ({hint})", tuple(files), tofu)
    how = "trusted on first use" if tofu else "sha256 verified"
    return ModelStatus(entry.name, "installed", {f.key: f.path for f in files},
                       f"{entry.name}: installed ({len(files)} file(s), {how})", tuple(files), tofu)


def status_of(entry: ModelEntry, *, root: Path | None = None, rehash: bool = False,
              cache: HashCache | None = None) -> ModelStatus:
    """Status of one manifest entry; rehash=True ignores the cache (verify)."""
    base = root_dir(root)
    own_cache = cache is None
    cache = cache or HashCache(base)
    files = [check_file(f, base, cache, rehash=rehash) for f in entry.files]
    if own_cache:
        cache.save()
    return _summarise(entry, files)


def model_status(name: str, *, entries: list[ModelEntry] | None = None, root: Path | None = None) -> ModelStatus:
    """What a back-end calls at construction. Never raises for a bad manifest or an unknown
    name: those come back as "missing" with the reason in `message`."""
    try:
        entry = find_model(entries if entries is not None else load_manifest(), name)
    except WeightsError as exc:
        return ModelStatus(name, "missing", {}, f"{name}: {exc}; using the offline default")
    return status_of(entry, root=root)


def all_statuses(entries: list[ModelEntry] | None = None, *, root: Path | None = None,
                 rehash: bool = False) -> list[ModelStatus]:
    """Status of every manifest entry (raises WeightsError when the manifest is invalid)."""
    entries = entries if entries is not None else load_manifest()
    cache = HashCache(root_dir(root))
    statuses = [status_of(e, root=root, rehash=rehash, cache=cache) for e in entries]
    cache.save()
    return statuses


def record_install(file: FileEntry, root: Path, sha: str) -> None:
    """After an atomic install: remember the hash (and, without a manifest hash, trust it)."""
    cache = HashCache(root)
    path = root / file.path
    cache.forget(file.path)
    cache.observe(file.path, path.stat(), sha)
    if not file.sha256:
        cache.set_tofu(file.path, sha)
    cache.save()


def ensure_known(name: str, entries: list[ModelEntry] | None = None) -> ModelEntry:
    """The entry for `name`, or WeightsError."""
    return find_model(entries if entries is not None else load_manifest(), name)
