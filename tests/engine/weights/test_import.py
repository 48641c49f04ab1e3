"""import_file: by name, by hash, by file name; wrong files are refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.weights.errors import WeightsError
from engine.weights.fetch import import_file
from engine.weights.store import model_status
from tests.engine.weights.helpers import model_toml, sha256

SMPL = b"python 2 pickle of the SMPL model " * 500
STATS = b"mean and std"


@pytest.fixture
def manifest(write_manifest, weights_root) -> Path:
    write_manifest(
        model_toml("smpl-neutral", [{"key": "model", "path": "smpl/SMPL_NEUTRAL.pkl"}], backend="smpl")
        + model_toml("stats-a", [{"key": "stats", "path": "shared/stats.pkl", "urls": ["http://x/s"],
                                  "sha256": sha256(STATS), "size": len(STATS)}])
        + model_toml("stats-b", [{"key": "stats", "path": "shared/stats.pkl", "urls": ["http://x/s"],
                                  "sha256": sha256(STATS), "size": len(STATS)},
                                 {"key": "other", "path": "b/other.bin", "urls": ["http://x/o"]}]))
    return weights_root


def test_import_by_name_trusts_on_first_use(manifest: Path, tmp_path: Path) -> None:
    source = tmp_path / "downloads" / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    source.parent.mkdir()
    source.write_bytes(SMPL)
    status = import_file(source, "smpl-neutral")
    assert status.state == "installed" and status.trusted_on_first_use
    assert status.paths["model"].read_bytes() == SMPL
    assert source.exists()  # copied, not moved
    assert not list(manifest.rglob("*.part"))


def test_import_by_hash_without_name(manifest: Path, tmp_path: Path) -> None:
    source = tmp_path / "whatever-name.pkl"
    source.write_bytes(STATS)
    status = import_file(source)
    assert status.name == "stats-a" and status.state == "installed"
    assert model_status("stats-b").state == "missing"  # its other file is still absent
    assert (manifest / "shared/stats.pkl").read_bytes() == STATS


def test_import_by_file_name(manifest: Path, tmp_path: Path) -> None:
    source = tmp_path / "SMPL_NEUTRAL.pkl"
    source.write_bytes(SMPL)
    assert import_file(source).name == "smpl-neutral"


def test_import_refuses_wrong_file(manifest: Path, tmp_path: Path) -> None:
    source = tmp_path / "stats.pkl"
    source.write_bytes(STATS + b"!")
    with pytest.raises(WeightsError, match="size mismatch for shared/stats.pkl"):
        import_file(source, "stats-a")
    source.write_bytes(b"X" * len(STATS))
    with pytest.raises(WeightsError, match="sha256 mismatch for shared/stats.pkl"):
        import_file(source, "stats-a")
    assert not (manifest / "shared/stats.pkl").exists() and not list(manifest.rglob("*.part"))


def test_import_errors(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such file"):
        import_file(tmp_path / "nope.pkl")
    empty = tmp_path / "empty.pkl"
    empty.touch()
    with pytest.raises(WeightsError, match="empty"):
        import_file(empty)
    unknown = tmp_path / "mystery.bin"
    unknown.write_bytes(b"???")
    with pytest.raises(WeightsError, match="cannot tell which model .* pass --name"):
        import_file(unknown)
    with pytest.raises(WeightsError, match="cannot tell which file of 'stats-b'.*--key"):
        import_file(unknown, "stats-b")
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        import_file(unknown, "nope")


def test_import_official_files_by_hash(shared_file, weights_root: Path, monkeypatch) -> None:
    """The repository manifest's recorded hashes identify the official 3DDFA_V2 files."""
    monkeypatch.delenv("HOLOCAP_MANIFEST", raising=False)
    checkpoint = import_file(shared_file("reference/3ddfa_v2/assets/mb05_120x120.pth"))
    assert checkpoint.name == "tddfa-mb05" and checkpoint.state == "missing"  # statistics not yet there
    import_file(shared_file("reference/3ddfa_v2/assets/param_mean_std_62d_120x120.pkl"))
    status = model_status("tddfa-mb05")
    assert status.state == "installed" and not status.trusted_on_first_use
    assert status.paths["checkpoint"] == weights_root / "tddfa/mb05_120x120.pth"
