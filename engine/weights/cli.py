"""`python main.py weights list | fetch NAME... | verify [NAME] | import PATH [--name NAME]`.

Output goes to stdout; every error is one line on stderr with a non-zero exit code
(1: the operation failed, 2: bad command line, 130: interrupted) — never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from tqdm import tqdm

from engine.paths import weights_dir
from engine.weights.errors import WeightsError
from engine.weights.fetch import DEFAULT_TIMEOUT_S, Progress, fetch, import_file, verify
from engine.weights.manifest import ModelEntry, load_manifest
from engine.weights.probe import probe_model
from engine.weights.store import ModelStatus, all_statuses


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit; we want one line
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py weights", description="third-party weights for the paper back-ends")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="models in the manifest and whether they are installed")
    fetch_p = sub.add_parser("fetch", help="download and verify models")
    fetch_p.add_argument("names", nargs="*", metavar="NAME")
    fetch_p.add_argument("--all", action="store_true", help="every model that has download URLs")
    fetch_p.add_argument("--force", action="store_true", help="download even when installed and intact")
    fetch_p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="network timeout, seconds")
    verify_p = sub.add_parser("verify", help="re-hash installed files")
    verify_p.add_argument("name", nargs="?", metavar="NAME")
    import_p = sub.add_parser("import", help="install a file you downloaded yourself (e.g. SMPL)")
    import_p.add_argument("path", metavar="PATH")
    import_p.add_argument("--name", help="the model it belongs to (default: found by hash or file name)")
    import_p.add_argument("--key", help="which file of a multi-file model")
    return parser


def human_size(n: int) -> str:
    if n <= 0:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def format_table(entries: list[ModelEntry], statuses: list[ModelStatus]) -> str:
    rows = [("NAME", "BACKEND", "STATE", "SIZE", "LICENCE")]
    for entry, status in zip(entries, statuses):
        state = status.state + ("*" if status.state == "installed" and status.trusted_on_first_use else "")
        size = human_size(entry.total_size) if all(f.size for f in entry.files) else "?"
        rows.append((entry.name, entry.backend, state, size, entry.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    if any(s.trusted_on_first_use and s.state == "installed" for s in statuses):
        lines.append("* no published sha256: the hash recorded at install is trusted (trust on first use)")
    return "\n".join(line.rstrip() for line in lines)


class _Bars:
    """tqdm bars per file on a terminal; silent otherwise (logs say what happened)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._bars: dict[str, tqdm] = {}

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        bar = self._bars.get(label)
        if bar is None:
            bar = self._bars[label] = tqdm(total=total or None, desc=label, unit="B", unit_scale=True,
                                           unit_divisor=1024, file=self._stream, leave=True)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _cmd_list(out: TextIO) -> int:
    entries = load_manifest()
    if not entries:
        print("no models in the manifest", file=out)
        return 0
    print(format_table(entries, all_statuses(entries)), file=out)
    print(f"installed under {weights_dir()}", file=out)
    return 0


def _cmd_fetch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    entries = load_manifest()
    names = [e.name for e in entries if all(f.urls for f in e.files)] if args.all else args.names
    if not names:
        raise _UsageError("fetch needs NAME (or --all)")
    bars: Progress = _Bars(err)
    try:
        for name in names:
            status = fetch(name, progress=bars, timeout=args.timeout, force=args.force, entries=entries)
            print(status.message, file=out)
    finally:
        bars.close()
    return 0


def verification(status: ModelStatus, backend: str) -> tuple[str, str]:
    """(word, detail) for `weights verify`: verified (every sha256 matches a published one),
    unverified (some file has no published sha256, but the model loads with the expected
    shapes and finite values), corrupt (a sha256 mismatch, or it does not load), missing."""
    if status.state != "installed":
        return status.state, status.message
    if not status.trusted_on_first_use:
        return "verified", "sha256 matches the published hash"
    problem = probe_model(status.name, backend, status.paths)
    if problem:
        return "corrupt", f"{status.name} {problem}; replace it (weights fetch/import)"
    return "unverified", "no published sha256; it loads with the expected tensor shapes"


def _cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    statuses = verify(args.name)
    backends = {e.name: e.backend for e in load_manifest()}
    bad = []
    for status in statuses:
        word, detail = verification(status, backends.get(status.name, ""))
        print(f"{status.name}: {word}" + (f" — {detail}" if word != "missing" else ""), file=out)
        if word == "corrupt" or (args.name and word == "missing"):
            bad.append(detail)
    if bad:
        print(f"error: {bad[0]}", file=err)
        return 1
    return 0


def _cmd_import(args: argparse.Namespace, out: TextIO) -> int:
    status = import_file(args.path, args.name, key=args.key)
    print(f"imported {args.path} for {status.name}", file=out)
    print(status.message, file=out)  # may say which other files of the model are still missing
    return 0


def main(argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the weights command; returns the exit code (see the module docstring)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return _cmd_list(out)
        if args.command == "fetch":
            return _cmd_fetch(args, out, err)
        if args.command == "verify":
            return _cmd_verify(args, out, err)
        return _cmd_import(args, out)
    except _UsageError as exc:
        print(f"usage error: {exc} (weights list | fetch NAME | verify [NAME] | import PATH [--name NAME])",
              file=err)
        return 2
    except WeightsError as exc:
        print(f"error: {exc}", file=err)
        return 1
    except OSError as exc:  # disk full, permissions on the weights dir
        print(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), file=err)
        return 1
    except KeyboardInterrupt:
        print("interrupted; partial downloads were removed", file=err)
        return 130
