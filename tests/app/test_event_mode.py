"""Event mode: fullscreen, UI hidden (F1 brings it back), autostart, watchdog restarts."""
from __future__ import annotations

import os
import types

import pytest

pytestmark = pytest.mark.gui

if not os.environ.get("DISPLAY"):
    pytest.skip("no X display: run the GUI tests under `xvfb-run -a`", allow_module_level=True)

from engine.settings import AppSettings  # noqa: E402


@pytest.fixture
def event_window(qtbot):
    from app.main_window import MainWindow

    settings = AppSettings()
    settings.stages = {"perception": True, "face": False, "body": False, "volume": False}
    settings.last_source = "synthetic:320x240@30"
    win = MainWindow(settings, event_mode=True)
    win.show_dialogs = False
    qtbot.addWidget(win)
    win.open_source(settings.last_source)
    yield win
    win.close()


def test_fullscreen_with_ui_hidden_and_f1_toggle(qtbot, event_window):
    win = event_window
    qtbot.waitUntil(lambda: win.isFullScreen(), timeout=5000)
    assert not win.toolbar.isVisible() and not win.controls.isVisible()
    win.set_ui_hidden(False)
    assert win.toolbar.isVisible() and win.controls.isVisible()


def test_watchdog_restarts_a_crashed_pipeline(qtbot, event_window):
    win = event_window
    qtbot.waitUntil(lambda: win.frames_shown >= 3, timeout=30000)
    crashed = win.session.pipeline

    def broken_read(self):
        raise OSError("camera unplugged")

    crashed.source.read = types.MethodType(broken_read, crashed.source)
    qtbot.waitUntil(lambda: not crashed.running, timeout=5000)
    assert crashed.stats().source_error and "unplugged" in crashed.stats().source_error
    qtbot.waitUntil(lambda: win.session.pipeline is not None and win.session.pipeline is not crashed
                    and win.session.pipeline.running, timeout=15000)
    shown = win.frames_shown
    qtbot.waitUntil(lambda: win.frames_shown > shown + 2, timeout=30000)


def test_gui_command_autostarts_last_source_in_event_mode(qtbot, monkeypatch):
    from app import launch, main_window

    started = {}
    monkeypatch.setattr(main_window.MainWindow, "open_source", lambda self, spec: started.setdefault("spec", spec))
    monkeypatch.setattr(launch.QApplication, "exec", lambda self: 0)
    settings = AppSettings()
    settings.last_source = "synthetic"
    args = types.SimpleNamespace(source=None, stages=None, view=None, frames=None, screenshot=None, event_mode=True)
    assert launch.run_gui(args, settings) == 0
    assert started["spec"] == "synthetic"
    for widget in launch.QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()  # freed by the event loop, not by a later garbage collection
