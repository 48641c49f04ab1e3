"""Small builders shared by the weights tests."""
from __future__ import annotations

import hashlib


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_toml(name: str, files: list[dict], backend: str = "tddfa") -> str:
    """One [[models]] entry; files: dicts with key, path, urls, sha256, size."""
    lines = ["[[models]]", f'name = "{name}"', f'backend = "{backend}"', 'licence = "MIT (test)"',
             f'description = "test model {name}"']
    for f in files:
        urls = ", ".join(f'"{u}"' for u in f.get("urls", []))
        lines += ["[[models.files]]", f'key = "{f["key"]}"', f'path = "{f["path"]}"', f"urls = [{urls}]",
                  f'sha256 = "{f.get("sha256", "")}"', f'size = {f.get("size", 0)}']
    return "\n".join(lines) + "\n\n"
