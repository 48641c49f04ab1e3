"""`weights` CLI in-process: exit codes and one-line messages, never a traceback."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.weights.cli import main
from tests.engine.weights.helpers import model_toml, sha256

DATA = b"weights " * 4096


@pytest.fixture
def setup(server, weights_root, write_manifest):
    write_manifest(
        model_toml("good", [{"key": "checkpoint", "path": "g/good.pth", "urls": [server.serve("/good", DATA)],
                             "sha256": sha256(DATA), "size": len(DATA)}])
        + model_toml("badhash", [{"key": "checkpoint", "path": "b/bad.pth", "urls": [server.serve("/bad", DATA)],
                                  "sha256": "f" * 64, "size": 0}], backend="hmr")
        + model_toml("manual", [{"key": "model", "path": "m/model.pkl"}], backend="smpl"))
    return weights_root


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue(), err.getvalue()


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_list(setup: Path) -> None:
    code, out, err = run("list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "BACKEND", "STATE", "SIZE", "LICENCE"]
    assert lines[1].split()[:4] == ["good", "tddfa", "missing", "32.8"]
    assert lines[3].split()[:4] == ["manual", "smpl", "missing", "?"]


def test_fetch_then_list_and_verify(setup: Path) -> None:
    code, out, err = run("fetch", "good")
    assert code == 0 and "good: installed" in out
    assert run("list")[1].splitlines()[1].split()[2] == "installed"
    code, out, err = run("verify")
    assert code == 0 and "good: verified" in out and err == ""
    code, out, err = run("verify", "manual")  # a named model that is not installed fails
    assert code == 1 and "manual is not installed" in _one_error_line(err)


def test_fetch_bad_hash(setup: Path) -> None:
    code, out, err = run("fetch", "badhash")
    line = _one_error_line(err)
    assert code == 1 and line.startswith("error: could not fetch b/bad.pth: sha256 mismatch for b/bad.pth")
    assert not (setup / "b/bad.pth").exists()


def test_verify_corrupt_exits_1(setup: Path) -> None:
    assert run("fetch", "good")[0] == 0
    path = setup / "g/good.pth"
    path.write_bytes(b"W" + path.read_bytes()[1:])
    code, out, err = run("verify")
    assert code == 1 and "good: corrupt" in out and "g/good.pth is corrupt" in _one_error_line(err)


def test_import(setup: Path, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"licensed model")
    code, out, err = run("import", str(source), "--name", "manual")
    assert code == 0 and "manual: installed" in out and "trusted on first use" in out
    code, out, err = run("import", str(tmp_path / "missing.pkl"))
    assert code == 1 and _one_error_line(err).startswith("error: no such file")


@pytest.mark.parametrize("argv, code, start", [
    ((), 2, "usage error"),
    (("frobnicate",), 2, "usage error"),
    (("fetch",), 2, "usage error: fetch needs NAME"),
    (("fetch", "unknown-model"), 1, "error: unknown model 'unknown-model'"),
    (("verify", "unknown-model"), 1, "error: unknown model"),
    (("import",), 2, "usage error"),
])
def test_bad_command_lines(setup: Path, argv: tuple[str, ...], code: int, start: str) -> None:
    got, out, err = run(*argv)
    assert got == code and _one_error_line(err).startswith(start)


def test_broken_manifest(write_manifest, weights_root) -> None:
    write_manifest("[[models]\n")
    code, out, err = run("list")
    assert code == 1 and "not valid TOML" in _one_error_line(err)


def test_verify_tells_unverified_from_corrupt_when_no_sha256_is_published(setup: Path, tmp_path: Path) -> None:
    """`manual` (SMPL) has no published sha256: a file that loads as SMPL with finite arrays
    is "unverified", garbage (or a model full of NaN) is "corrupt" and exits 1."""
    import dataclasses

    import numpy as np

    from engine.body.smpl_io import save_smpl_npz
    from tests.engine.body.smpl_random import random_smpl

    parents = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
    good = random_smpl(60, parents, num_betas=10, seed=1)
    save_smpl_npz(good, tmp_path / "smpl.npz")
    assert run("import", str(tmp_path / "smpl.npz"), "--name", "manual")[0] == 0
    code, out, err = run("verify", "manual")
    assert code == 0 and "manual: unverified" in out and "expected tensor shapes" in out, out + err

    # Changed after it was trusted: the recorded hash catches it.
    (setup / "m/model.pkl").write_bytes(b"not a model at all " * 100)
    assert run("verify", "manual")[0] == 1

    # Garbage trusted on its first sighting (imported): only loading it tells.
    (tmp_path / "garbage.pkl").write_bytes(b"not a model at all " * 100)
    assert run("import", str(tmp_path / "garbage.pkl"), "--name", "manual")[0] == 0
    code, out, err = run("verify", "manual")
    assert code == 1 and "manual: corrupt" in out and "does not load" in _one_error_line(err)

    nan = dataclasses.replace(good, v_template=np.full_like(good.v_template, np.nan))
    save_smpl_npz(nan, tmp_path / "nan.npz")
    assert run("import", str(tmp_path / "nan.npz"), "--name", "manual")[0] == 0
    code, out, err = run("verify", "manual")
    assert code == 1 and "NaN" in _one_error_line(err)
