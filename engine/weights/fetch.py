"""Download, import and verify weights. Nothing becomes an installed file until its size
and sha256 have been checked: bytes go to a temp file in the target directory, which is
renamed into place only on a match and deleted otherwise (also on errors and Ctrl-C)."""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from engine.weights.errors import WeightsError
from engine.weights.manifest import FileEntry, ModelEntry, find_model, load_manifest
from engine.weights.store import (CHUNK, ModelStatus, HashCache, check_file, record_install, root_dir, sha256_file,
                                  status_of)

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(label, bytes_done, bytes_total) — total is 0 when unknown."""
USER_AGENT = "holocap-weights/1.0"
DEFAULT_TIMEOUT_S = 30.0


def _temp_path(target: Path) -> Path:
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.part"


def _check_bytes(file: FileEntry, got_size: int, got_sha: str, origin: str) -> None:
    if file.size and got_size != file.size:
        raise WeightsError(f"size mismatch for {file.path}: expected {file.size} bytes, got {got_size} ({origin})")
    if file.sha256 and got_sha != file.sha256:
        raise WeightsError(f"sha256 mismatch for {file.path}: expected {file.sha256}, got {got_sha} ({origin})")


def _install(temp: Path, target: Path) -> None:
    with open(temp, "rb+") as f:
        os.fsync(f.fileno())  # the rename must not publish bytes that are not on disk yet
    os.replace(temp, target)


def _download_once(url: str, file: FileEntry, temp: Path, progress: Progress | None, timeout: float) -> str:
    """Stream `url` into `temp`, checking length, size and sha256. Returns the sha256."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    done = 0
    with urllib.request.urlopen(request, timeout=timeout) as response, open(temp, "xb") as out:
        length = response.headers.get("Content-Length")
        expected_length = int(length) if length and length.isdigit() else 0
        total = expected_length or file.size
        if progress is not None:
            progress(file.path, 0, total)
        while True:
            try:
                chunk = response.read(CHUNK)
            except http.client.IncompleteRead as exc:
                done += len(exc.partial)
                raise WeightsError(f"incomplete download of {file.path}: got {done} of {expected_length} bytes "
                                   f"({url})") from exc
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(file.path, done, total)
    if expected_length and done != expected_length:
        raise WeightsError(f"incomplete download of {file.path}: got {done} of {expected_length} bytes ({url})")
    sha = digest.hexdigest()
    _check_bytes(file, done, sha, f"from {url}")
    return sha


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc)


def download_file(file: FileEntry, root: Path, *, progress: Progress | None = None,
                  timeout: float = DEFAULT_TIMEOUT_S) -> Path:
    """Install one file from its URLs (tried in order). Raises WeightsError when all fail."""
    if not file.urls:
        raise WeightsError(f"{file.path} has no download URL")
    target = root / file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in file.urls:
        temp = _temp_path(target)
        try:
            sha = _download_once(url, file, temp, progress, timeout)
            _install(temp, target)
        except WeightsError as exc:
            failures.append(str(exc))
            log.warning("%s", exc)
            continue
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # ValueError: malformed URL or header; HTTPException: broken server responses.
            failures.append(f"{url}: {_reason(exc)}")
            log.warning("download of %s from %s failed: %s", file.path, url, _reason(exc))
            continue
        finally:
            temp.unlink(missing_ok=True)
        record_install(file, root, sha)
        log.info("installed %s (%s)", target, "sha256 verified" if file.sha256 else "trusted on first use")
        return target
    raise WeightsError(f"could not fetch {file.path}: " + "; ".join(failures))


def fetch(name: str, *, progress: Progress | None = None, timeout: float = DEFAULT_TIMEOUT_S,
          force: bool = False, entries: list[ModelEntry] | None = None, root: Path | None = None) -> ModelStatus:
    """Download every file of model `name` that is not already installed and intact.

    Returns the model's status afterwards ("installed"). Raises WeightsError with a
    one-line message (unknown name, no URL, HTTP errors, size or sha256 mismatch).
    """
    entry = find_model(entries if entries is not None else load_manifest(), name)
    base = root_dir(root)
    cache = HashCache(base)
    todo = [f for f in entry.files if force or check_file(f, base, cache).state != "installed"]
    cache.save()  # before downloading: each install records itself in the cache file
    for file in todo:
        if not file.urls:
            raise WeightsError(f"{entry.name} cannot be downloaded ({entry.licence}): get {Path(file.path).name} "
                               f"from its publisher and run `python main.py weights import PATH --name {entry.name}`")
    for file in todo:
        download_file(file, base, progress=progress, timeout=timeout)
    if not todo:
        log.info("%s is already installed", entry.name)
    return status_of(entry, root=base)


def _match_file(entries: list[ModelEntry], source: Path, sha: str, name: str | None,
                key: str | None) -> tuple[ModelEntry, FileEntry]:
    """Which manifest file a user-provided file is: by hash, else by the entry's only file or
    its file name. Raises WeightsError when it cannot tell."""
    pool = [find_model(entries, name)] if name else entries
    pairs = [(e, f) for e in pool for f in e.files if key is None or f.key == key]
    if not pairs:
        raise WeightsError(f"model '{name}' has no file with key '{key}'")
    for rule in (lambda f: bool(f.sha256) and f.sha256 == sha,
                 lambda f: Path(f.path).name.lower() == source.name.lower()):
        found = [(e, f) for e, f in pairs if rule(f)]
        if found and len({(f.path, f.sha256) for _, f in found}) == 1:
            return found[0]  # one file, possibly listed by several models (shared statistics)
    if name and len(pairs) == 1:
        return pairs[0]
    if name:
        keys = ", ".join(f.key for _, f in pairs)
        raise WeightsError(f"cannot tell which file of '{name}' {source.name} is; pass --key ({keys})")
    raise WeightsError(f"cannot tell which model {source} belongs to (no sha256 or file name matches); "
                       f"pass --name NAME")


def import_file(path: str | Path, name: str | None = None, *, key: str | None = None,
                entries: list[ModelEntry] | None = None, root: Path | None = None) -> ModelStatus:
    """Copy a user-provided file (e.g. the licensed SMPL .pkl) into place after checking it.

    The entry is found by `name` (and `key` for multi-file models) or by the file's sha256 /
    file name. Returns the model's status afterwards. Raises WeightsError.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise WeightsError(f"no such file: {source}" if not source.exists() else f"not a file: {source}")
    if source.stat().st_size == 0:
        raise WeightsError(f"file is empty (0 bytes): {source}")
    entries = entries if entries is not None else load_manifest()
    try:
        sha = sha256_file(source)
    except OSError as exc:
        raise WeightsError(f"cannot read {source}: {exc.strerror or exc}") from exc
    entry, file = _match_file(entries, source, sha, name, key)
    _check_bytes(file, source.stat().st_size, sha, f"from {source}")
    base = root_dir(root)
    target = base / file.path
    if target.exists() and target.resolve() == source.resolve():
        record_install(file, base, sha)
        return status_of(entry, root=base)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(target)
    try:
        shutil.copyfile(source, temp)
        copied = sha256_file(temp)  # the source could change under us; check what was written
        if copied != sha:
            raise WeightsError(f"{source} changed while it was being copied; try again")
        _install(temp, target)
    except OSError as exc:
        raise WeightsError(f"cannot install {source} as {target}: {exc.strerror or exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    record_install(file, base, sha)
    log.info("imported %s as %s (%s)", source, target, entry.name)
    return status_of(entry, root=base)


def verify(name: str | None = None, *, entries: list[ModelEntry] | None = None,
           root: Path | None = None) -> list[ModelStatus]:
    """Re-hash installed files (ignoring the cache) of one model or all; returns statuses."""
    entries = entries if entries is not None else load_manifest()
    chosen = [find_model(entries, name)] if name else entries
    base = root_dir(root)
    cache = HashCache(base)
    statuses = [status_of(e, root=base, rehash=True, cache=cache) for e in chosen]
    cache.save()
    return statuses
