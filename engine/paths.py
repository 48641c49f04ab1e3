"""Where holocap's files live: the repository, the user's cache, config and log dirs."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "holocap"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def shaders_dir() -> Path:
    return repo_root() / "shaders"


def assets_dir() -> Path:
    """The project's own small assets (committed), next to manifest.toml."""
    return repo_root() / "weights"


def _dir_from_env(var: str, default: str) -> Path:
    # HOLOCAP_*_DIR lets tests and CI keep the user's real directories untouched.
    path = Path(os.environ.get(var) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    return _dir_from_env("HOLOCAP_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def config_dir() -> Path:
    return _dir_from_env("HOLOCAP_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME))


def log_dir() -> Path:
    return _dir_from_env("HOLOCAP_LOG_DIR", platformdirs.user_log_dir(APP_NAME))


def weights_dir() -> Path:
    """Where downloaded/imported third-party weights are installed (git-ignored)."""
    return _dir_from_env("HOLOCAP_WEIGHTS_DIR", str(repo_root() / "weights" / "installed"))
