"""Starting the desktop app from the command line: the display check, flags applied to the
settings, scripted runs (--frames N, --screenshot) and stop signals closing the window."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.qt_env import sanitize_qt_environment
from engine.settings import AppSettings
from engine.signals import exit_status, stop_on_signals


class NoDisplayError(Exception):
    """The desktop app cannot start: there is no screen to show it on."""


def check_display() -> None:
    """Fail with a clear sentence instead of Qt's abort when no display is reachable."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NoDisplayError(
            "no display found (DISPLAY/WAYLAND_DISPLAY unset): the desktop app needs a screen; "
            "without one use `run --source SOURCE --headless --out DIR`, or start it under `xvfb-run -a`")


def run_gui(args, settings: AppSettings) -> int:
    """Open the window; with --frames N, process N frames, optionally --screenshot, exit."""
    check_display()
    sanitize_qt_environment()
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("holocap")
    if getattr(args, "view", None):
        settings.view = args.view
    if getattr(args, "shading", None):
        settings.shading = args.shading
    if getattr(args, "volume_quality", None):
        settings.volume_quality = args.volume_quality
    if getattr(args, "target_fps", None):
        settings.target_fps = float(args.target_fps)
    # In the app, a flag is a choice the user keeps (as if made in the controls panel).
    for flag, key in (("face_backend", "face_backend"), ("body_backend", "body_backend"),
                      ("volume_backend", "volume_backend"), ("hfov", "hfov_deg")):
        if getattr(args, flag, None) is not None:
            setattr(settings, key, getattr(args, flag))
    if getattr(args, "stages", None):
        wanted = {s.strip() for s in args.stages.split(",")}
        settings.stages = {name: name in wanted or name == "perception" for name in settings.stages}
    if getattr(args, "remote", None):
        settings.remote_url = args.remote  # kept, like the other flags; the token never is
    window = MainWindow(settings, event_mode=bool(getattr(args, "event_mode", False)), args=args)
    frames = getattr(args, "frames", None)
    window.show_dialogs = not frames
    if not window.event_mode:
        window.show()
    source = getattr(args, "source", None) or (settings.last_source if window.event_mode else None)
    if source:
        # Fail fast on bad input with a dialog-free message when scripted (--frames).
        window.open_source(source)
    status = {"code": 0}
    if frames:
        def check_done() -> None:
            if window.frames_shown >= frames and timer.isActive():
                timer.stop()
                window._update_hud()
                shot = getattr(args, "screenshot", None)
                if shot:
                    window.viewport.update()
                    QApplication.processEvents()
                    window.save_screenshot(Path(shot))
                window.close()
        timer = QTimer(window)
        timer.timeout.connect(check_done)
        timer.start(50)

        def on_failed(message: str) -> None:
            print(f"holocap: {message}", file=sys.stderr)
            status["code"] = 2
            window.close()
        window.session.failed.connect(on_failed)
    # Qt's event loop runs no Python code while idle, so a short timer lets the interpreter
    # see a SIGTERM/SIGHUP/SIGINT; the window then closes as if the user closed it
    # (the session stops, recordings are finished, settings saved).
    with stop_on_signals(raise_in_main=False) as stop:
        def close_on_stop() -> None:
            if stop.requested:
                heartbeat.stop()
                window.close()  # closeEvent stops the session and finishes the outputs
                app.quit()

        heartbeat = QTimer(window)
        heartbeat.timeout.connect(close_on_stop)
        heartbeat.start(200)
        try:
            app.exec()
        finally:
            # The timer's slot refers to this call's window and state: it must not outlive
            # run_gui (a window kept by the caller would fire it into freed objects).
            heartbeat.stop()
            heartbeat.deleteLater()
    if stop.requested:
        return exit_status(stop.signum)
    return status["code"]
