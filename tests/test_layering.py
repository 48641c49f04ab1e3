"""engine/ never imports Qt (the GUI depends on the engine, never the other way round)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QT_MODULES = ("PyQt6", "PyQt5", "PySide6", "PySide2", "qtpy", "superqt")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_never_imports_qt():
    offenders = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in QT_MODULES or name.split(".")[0] == "app":
                offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert not offenders, "engine/ must not import Qt or app/:\n" + "\n".join(offenders)


def test_the_scan_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom PyQt6.QtCore import QTimer\n")
    assert "PyQt6.QtCore" in imported_modules(sample)
