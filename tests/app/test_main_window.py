"""The whole window under Xvfb: a video source runs, the viewport shows the frame with
the overlay, views and toggles switch, sources switch, the event loop stays responsive,
bad input gives a dialog-free message in scripted runs."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

pytestmark = pytest.mark.gui

if not os.environ.get("DISPLAY"):
    pytest.skip("no X display: run the GUI tests under `xvfb-run -a`", allow_module_level=True)

from PyQt6.QtCore import QTimer  # noqa: E402

from engine.settings import AppSettings  # noqa: E402


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    settings = AppSettings()
    settings.stages = {"perception": True, "face": False, "body": False, "volume": False}
    win = MainWindow(settings)
    win.show_dialogs = False
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def wait_frames(qtbot, win, count: int, timeout_ms: int = 60000) -> None:
    start = win.frames_shown
    qtbot.waitUntil(lambda: win.frames_shown >= start + count, timeout=timeout_ms)


def green_pixels(image: np.ndarray) -> int:
    """Overlay landmarks are drawn in saturated green (BGR)."""
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(((g > 150) & (g > r + 60) & (g > b + 60)).sum())


def test_video_source_shows_frame_with_overlay(qtbot, window, shared_file):
    window.open_source(str(shared_file("media/talking_head.mp4")))
    wait_frames(qtbot, window, 5)
    image = window.viewport.grab_image()
    assert image.std() > 20, "viewport is blank"
    fr = window.session.latest()
    assert fr is not None and fr.get("perception").face_landmarks is not None
    assert green_pixels(image) > 100, "landmark overlay missing"
    # The same view without the overlay has (almost) no such pixels: it's the overlay.
    window.viewport.set_view(window.viewport.view.__class__(mode="overlay", show_landmarks=False,
                                                            show_face_mesh=False, show_skeleton=False))
    qtbot.wait(200)
    assert green_pixels(window.viewport.grab_image()) < green_pixels(image) / 5


def test_views_toggles_and_source_switch(qtbot, window, shared_file):
    window.open_source(str(shared_file("media/talking_head.mp4")))
    wait_frames(qtbot, window, 3)
    grabs = {}
    for view in ("overlay", "mesh", "volume", "split"):
        window.view_combo.setCurrentText(view)
        assert window.settings.view == view
        qtbot.wait(150)
        grabs[view] = window.viewport.grab_image()
        assert grabs[view].std() > 3, f"{view} view is blank"
    assert np.abs(grabs["overlay"].astype(int) - grabs["mesh"]).mean() > 5
    window.view_combo.setCurrentText("overlay")
    # Toggle a stage: the pipeline restarts with it and keeps producing frames.
    window.controls.stage_checks["face"].setChecked(False)
    wait_frames(qtbot, window, 3)
    # Switch to a different source: frames now come from it.
    window.open_source("synthetic:320x240@30")
    qtbot.waitUntil(lambda: (window.session.latest() is not None
                             and window.session.latest().frame.source_id.startswith("synthetic")),
                    timeout=30000)
    assert window.session.latest().frame.image.shape == (240, 320, 3)


def test_event_loop_stays_responsive_while_stages_run(qtbot, window, shared_file):
    window.open_source(str(shared_file("media/talking_head.mp4")))
    wait_frames(qtbot, window, 3)
    delays: list[float] = []
    expected = {"t": time.monotonic() + 0.02}

    def tick() -> None:
        now = time.monotonic()
        delays.append(now - expected["t"])
        expected["t"] = now + 0.02

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    qtbot.wait(3000)
    timer.stop()
    assert window.frames_shown > 0
    print(f"event-loop delay: median {np.median(delays)*1000:.1f} ms, p95 {np.percentile(delays, 95)*1000:.1f} ms, n={len(delays)}")
    assert len(delays) > 20
    # The acceptance bound is on the typical latency; the tail gets a looser sanity bound
    # because CI shares its 2 cores with the stages and software GL.
    assert float(np.median(delays)) < 0.050, f"event loop lagged: median {np.median(delays):.3f}s"
    assert float(np.percentile(delays, 95)) < 0.150, f"event loop stalls: p95 {np.percentile(delays, 95):.3f}s"


def test_bad_source_reports_without_hanging(qtbot, window, tmp_path):
    failures: list[str] = []
    window.session.failed.connect(failures.append)
    window.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: bool(failures), timeout=10000)
    assert "missing.mp4" in failures[0] and "\n" not in failures[0]


def test_settings_persist_across_windows(qtbot, tmp_path):
    from app.main_window import MainWindow
    from engine.settings import load_settings

    settings = AppSettings()
    win = MainWindow(settings)
    win.show_dialogs = False
    qtbot.addWidget(win)
    win.view_combo.setCurrentText("split")
    win.controls.stage_checks["body"].setChecked(False)
    win.close()
    loaded = load_settings()
    assert loaded.view == "split" and loaded.stages["body"] is False


def test_gpu_server_field_checks_the_address_and_feeds_the_stages(qtbot, window):
    edit = window.controls.server_edit
    assert window.remote_options() is None  # nothing set: every stage runs here
    edit.setText("gpu-box:8000")  # no scheme: refused, the setting keeps its value
    edit.editingFinished.emit()
    assert window.settings.remote_url == "" and "http://HOST:PORT" in edit.toolTip()
    edit.setText("http://127.0.0.1:9")
    edit.editingFinished.emit()
    assert window.settings.remote_url == "http://127.0.0.1:9"
    options = window.stage_options().remote
    assert options.url == "http://127.0.0.1:9" and options.stages == ("face", "body", "volume")
    assert options.timeout_s == 1.0


def test_missing_weights_warning_reaches_the_status_bar(qtbot, window):
    import logging

    logging.getLogger("engine.face.stage").warning("face back-end 'tddfa' unavailable: using the offline default")
    qtbot.waitUntil(lambda: any("unavailable" in w for w in window.warnings), timeout=2000)
    assert "unavailable" in window.statusBar().currentMessage()


def test_camera_mode_picker_offers_the_cameras_modes(qtbot, window):
    window.controls.set_camera_modes(["640x480@30:MJPG", "1280x720@30:MJPG", "1920x1080@5:YUYV"])
    combo = window.controls.mode_combo
    assert [combo.itemText(i) for i in range(combo.count())][1:] == [
        "640x480@30:MJPG", "1280x720@30:MJPG", "1920x1080@5:YUYV"]
    combo.setCurrentIndex(2)
    combo.activated.emit(2)
    assert window.settings.camera_mode == "1280x720@30:MJPG"
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    assert window.settings.camera_mode == ""


def test_shortcuts_work_after_clicking_into_the_viewport(qtbot, window):
    """The view is a GL window embedded in the widgets: a click into it must not take the
    keyboard from the main window, whose shortcuts (F1 hides the UI) would then be dead."""
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtGui import QGuiApplication
    from PyQt6.QtTest import QTest

    window.activateWindow()
    assert QTest.qWaitForWindowActive(window.windowHandle(), 5000)
    QTest.mouseClick(window.viewport.gl_window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(40, 40))
    qtbot.wait(100)
    focus = QGuiApplication.focusWindow()
    assert focus is not None and focus is not window.viewport.gl_window
    assert window.controls.isVisible()
    QTest.keyClick(focus, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: not window.controls.isVisible(), timeout=2000)


def test_shading_control_switches_the_mesh_view_and_persists(qtbot, window):
    """The mesh view's shading (textured by default) is chosen in the toolbar and saved."""
    assert window.shading_combo.currentText() == "textured"
    assert window.viewport.view.shading == "textured"
    window.shading_combo.setCurrentText("matcap")
    assert window.settings.shading == "matcap" and window.viewport.view.shading == "matcap"
    window.settings.shading = "phong"  # a change from elsewhere (settings, CLI) shows in the control
    assert window.shading_combo.currentText() == "phong" and window.viewport.view.shading == "phong"
