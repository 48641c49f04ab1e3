"""The Qt viewport under a real X server (run with `xvfb-run -a`): it draws the frame and
the overlay, grabs non-blank images, drops stale results, orbits with the mouse and shows
a HUD."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.gui

if not os.environ.get("DISPLAY"):
    pytest.skip("no X display: run the GUI tests under `xvfb-run -a`", allow_module_level=True)

from PyQt6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PyQt6.QtGui import QMouseEvent, QWheelEvent  # noqa: E402

from app.qt_env import sanitize_qt_environment  # noqa: E402
from app.viewport import Viewport, ViewportWindow, hud_lines, is_stale  # noqa: E402
from engine.perception.result import PerceptionResult  # noqa: E402
from engine.render.view import ViewSettings  # noqa: E402
from tests.engine.render import synthetic as syn  # noqa: E402

# cv2 (imported by the renderer) points Qt at its own plugins: undo before QApplication.
sanitize_qt_environment()


@pytest.fixture
def viewport(qtbot):
    widget = Viewport(refresh_hz=100)
    qtbot.addWidget(widget)
    widget.setFixedSize(syn.WIDTH, syn.HEIGHT)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.waitUntil(lambda: widget.gl_ready, timeout=5000)  # the GL window is exposed after the widget
    if widget.devicePixelRatioF() != 1.0:
        pytest.skip("pixel checks assume a device pixel ratio of 1 (Xvfb)")
    return widget


def landmark_result(index: int = 1, t: float = 1.0):
    perception = PerceptionResult((syn.HEIGHT, syn.WIDTH), face_landmarks=syn.spaced_landmarks(count=120, seed=3))
    return syn.frame_result(syn.gradient_image(), {"perception": perception, "face": syn.face_result()},
                            index=index, t_capture=t)


def wait_painted(qtbot, widget: Viewport, index: int) -> None:
    qtbot.waitUntil(lambda: widget.displayed_index == index, timeout=5000)


def test_shows_frame_and_overlay(qtbot, viewport):
    fr = landmark_result()
    viewport.set_frame_result(fr)
    wait_painted(qtbot, viewport, 1)
    image = viewport.grab_image()
    assert image.shape == (syn.HEIGHT, syn.WIDTH, 3) and image.std() > 20
    untouched = np.abs(image.astype(int) - syn.gradient_image()).max(axis=2) <= 2
    assert untouched.mean() > 0.6, "the camera frame should fill the view"
    landmarks = fr.results["perception"].face_landmarks
    centre = image[np.floor(landmarks[:, 1]).astype(int), np.floor(landmarks[:, 0]).astype(int)].astype(int)
    green = (centre[:, 1] > 180) & (centre[:, 2] < 140)
    assert green.mean() > 0.95, "landmark splats missing at their pixels"
    assert viewport.render_fps >= 0.0


def test_mesh_view_and_mouse_orbit_change_the_image(qtbot, viewport):
    viewport.set_frame_result(landmark_result())
    viewport.set_view_mode("mesh")
    wait_painted(qtbot, viewport, 1)
    before = viewport.grab_image()
    assert np.abs(before.astype(int) - syn.gradient_image()).mean() > 40
    drag(viewport, (100, 100), (160, 130))
    assert viewport.view.orbit.yaw_deg == pytest.approx(-24.0)
    assert viewport.view.orbit.pitch_deg == pytest.approx(12.0)
    after = viewport.grab_image()
    assert np.abs(after.astype(int) - before).sum(axis=2).astype(bool).mean() > 0.002
    viewport.reset_orbit()
    np.testing.assert_array_equal(viewport.grab_image(), before)


def drag(widget: Viewport, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Mouse events go to the GL window inside the widget, where the window system sends them."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, pos, buttons in [(QMouseEvent.Type.MouseButtonPress, start, left),
                               (QMouseEvent.Type.MouseMove, end, left),
                               (QMouseEvent.Type.MouseButtonRelease, end, none)]:
        p = QPointF(*pos)
        widget.gl_window.event(QMouseEvent(kind, p, p, left, buttons, Qt.KeyboardModifier.NoModifier))


def test_wheel_zooms_and_volume_drag_turns_the_volume_view(viewport):
    p = QPointF(100, 100)
    wheel = QWheelEvent(p, p, QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    viewport.gl_window.event(wheel)
    assert viewport.view.orbit.distance == pytest.approx(1 / 1.1 ** 2)
    viewport.set_view_mode("volume")
    drag(viewport, (200, 100), (100, 100))
    assert viewport.view.volume_yaw_deg == pytest.approx(40.0)
    assert viewport.view.orbit.yaw_deg == 0.0
    viewport.reset_orbit()
    assert viewport.view.volume_yaw_deg == 0.0 and viewport.view.orbit.distance == 1.0
    with pytest.raises(ValueError):
        viewport.set_view_mode("sideways")


def test_render_image_gives_a_clean_view_at_any_size(qtbot, viewport):
    viewport.set_frame_result(landmark_result())
    viewport.set_hud_stats({"capture fps": 30.0})
    wait_painted(qtbot, viewport, 1)
    small = viewport.render_image(160, 120)
    assert small.shape == (120, 160, 3)
    expected = syn.gradient_image()[1::2, 1::2].astype(int)  # the frame at half size
    assert (np.abs(small.astype(int) - expected).max(axis=2) <= 12).mean() > 0.6
    mesh = viewport.render_image(320, 240, ViewSettings(mode="mesh"))
    assert np.abs(mesh.astype(int) - syn.gradient_image()).mean() > 40
    assert viewport.view.mode == "overlay"  # the widget's own view is untouched
    # grab_image() is the same clean render at the widget's size.
    np.testing.assert_array_equal(viewport.grab_image(), viewport.render_image(syn.WIDTH, syn.HEIGHT))


def test_stale_results_are_dropped(viewport):
    viewport.set_frame_result(landmark_result(index=5, t=5.0))
    viewport.set_frame_result(landmark_result(index=3, t=3.0))
    assert viewport.frame_result.frame.index == 5 and viewport.dropped_frames == 1
    viewport.set_frame_result(landmark_result(index=6, t=6.0))  # replaces 5 before a paint
    assert viewport.frame_result.frame.index == 6 and viewport.dropped_frames == 2
    restarted = landmark_result(index=0, t=10.0)
    assert not is_stale(restarted, viewport.frame_result)


def test_hud_is_drawn_only_when_asked(qtbot, viewport):
    viewport.set_frame_result(landmark_result())
    viewport.set_hud_stats({"capture fps": 29.97, "face ms": 4.25, "dropped": 3})
    wait_painted(qtbot, viewport, 1)
    clean, with_hud = viewport.grab_image(), viewport.grab_image(hud=True)
    corner = np.abs(with_hud[:60, :150].astype(int) - clean[:60, :150]).sum(axis=2) > 30
    assert corner.mean() > 0.2, "HUD box missing in the top-left corner"
    assert (with_hud[120:] == clean[120:]).all()
    assert hud_lines({"capture fps": 29.97, "dropped": 3, "x": None}) == ["capture fps: 30.0", "dropped: 3", "x: -"]


def test_placeholder_before_any_frame(qtbot, viewport):
    viewport.set_view(ViewSettings(mode="volume"))
    qtbot.waitUntil(lambda: viewport.paint_count > 0, timeout=5000)
    image = viewport.grab_image()
    assert (image > 150).all(axis=2).sum() > 100, "expected the 'waiting for frames' text"


def test_a_collected_window_does_not_break_another_viewports_gl(qtbot, monkeypatch):
    """A closed viewport caught in a reference cycle is freed by Python's cyclic collector
    whenever a collection happens to run. Freeing a GL window (or a QOpenGLWidget) releases
    the current GL context, so a collection during another viewport's GL work must not
    leave that work without a context: the new viewport still builds its shaders and
    draws the frame."""
    import gc
    import weakref

    thresholds = gc.get_threshold()
    freed_during_initialize: list[bool] = []
    original_initialize = ViewportWindow.initializeGL

    def initialize_while_collections_are_due(self):
        garbage.clear()  # the old viewport is now unreachable, awaiting a collection
        gc.set_threshold(1)  # a collection on (almost) every allocation
        gc.enable()
        try:
            original_initialize(self)
        finally:
            gc.set_threshold(*thresholds)
            freed_during_initialize.append(old_ref() is None)

    # No automatic collection until the new viewport's initializeGL: the old viewport stays
    # in the youngest generation, which the first collection there frees.
    gc.disable()
    try:
        old = Viewport(refresh_hz=100)
        old.show()
        qtbot.waitUntil(lambda: old.gl_ready, timeout=5000)
        old.close()
        old.cycle = old  # only the cyclic collector can free it now
        old_ref = weakref.ref(old)
        garbage = [old]
        del old
        monkeypatch.setattr(ViewportWindow, "initializeGL", initialize_while_collections_are_due)
        widget = Viewport(refresh_hz=100)
        qtbot.addWidget(widget)
        widget.setFixedSize(syn.WIDTH, syn.HEIGHT)
        widget.show()
        qtbot.waitUntil(lambda: widget.gl_ready, timeout=5000)
    finally:
        gc.enable()
    assert freed_during_initialize == [True], "the old viewport should have been collected meanwhile"
    widget.set_frame_result(landmark_result())
    wait_painted(qtbot, widget, 1)
    assert widget.grab_image().std() > 20
