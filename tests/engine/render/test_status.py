"""Placeholder wording for views whose stage has nothing to draw."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.render.status import stage_placeholder
from tests.engine.render import synthetic as syn

REPO = Path(__file__).resolve().parents[3]


def test_stage_placeholder_names_the_reason():
    fr = syn.frame_result(syn.flat_image(), {"face": syn.face_result(), "body": None, "volume": None},
                          errors={"volume": "RuntimeError: out of memory"})
    assert stage_placeholder(fr, "face") is None
    assert stage_placeholder(fr, "body") == "no body found"
    assert stage_placeholder(fr, "volume") == "volume stage failed"
    assert stage_placeholder(fr, "perception") == "perception stage off"


def _imports_in_fresh_process(code: str) -> set[str]:
    env = dict(os.environ, PYOPENGL_PLATFORM="egl", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    return set(out.stdout.split())


def test_gl_free_modules_do_not_import_opengl():
    # They are imported by tests and the app before any GL platform is chosen.
    modules = _imports_in_fresh_process(
        "import engine.render.status, engine.render.transforms, engine.render.view, engine.render.geometry")
    assert not {m for m in modules if m.split(".")[0] == "OpenGL"}


def test_renderer_never_imports_qt():
    modules = _imports_in_fresh_process(
        "import engine.render.scene, engine.render.headless, engine.render.gl_context")
    assert "OpenGL.GL" in modules
    assert not {m for m in modules if m.split(".")[0] in ("PyQt6", "PySide6", "PyQt5")}
