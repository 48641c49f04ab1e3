"""The holocap window: source picker, viewport, controls, HUD, outputs, event mode."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QComboBox, QFileDialog, QLabel, QMainWindow,
                             QMessageBox, QProgressDialog, QToolBar)

from app.controls import ControlsDock
from app.hud import hud_stats
from app.log_bridge import LogBridge
from app.session import CaptureSession
from engine.render.view import SHADINGS
from engine.settings import AppSettings, save_settings
from engine.stage_factory import StageOptions

log = logging.getLogger(__name__)

OPEN_FILE_ITEM = "Open file…"
WATCHDOG_MS = 2000
OUTPUT_WIDTH, OUTPUT_HEIGHT = 1280, 720  # virtual camera / MJPEG frame size


class MainWindow(QMainWindow):
    camera_modes_ready = pyqtSignal(list)  # from a worker thread, queued to the GUI

    def __init__(self, settings: AppSettings, *, event_mode: bool = False, args: Any = None) -> None:
        super().__init__()
        from app.viewport import Viewport  # imports OpenGL: only once Qt is up

        self.settings = settings
        self._args = args  # the command line: --remote-token / --remote-timeout / … for the server
        self.session = CaptureSession(self)
        self.viewport = Viewport(self)
        self.viewport.set_view_mode(settings.view)
        self.setCentralWidget(self.viewport)
        self.setWindowTitle("holocap")
        self.resize(1280, 800)
        self._progress: QProgressDialog | None = None
        self._last_index = -1
        self.frames_shown = 0
        self._display_times: list[float] = []
        self.event_mode = event_mode
        self._outputs: dict[str, Any] = {}
        self.show_dialogs = True  # False for scripted runs (--frames): print, never block

        self._build_toolbar()
        self.controls = ControlsDock(settings, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.controls)
        self.controls.restart_requested.connect(self.restart)
        self.controls.outputs_changed.connect(self._sync_outputs)
        self.camera_modes_ready.connect(self.controls.set_camera_modes)
        self.status_label = QLabel("")
        self.statusBar().addPermanentWidget(self.status_label)

        self.log_bridge = LogBridge(parent=self)
        self.log_bridge.warning.connect(self._on_engine_warning)
        self.warnings: list[str] = []
        self.session.loading.connect(self._on_loading)
        self.session.started.connect(self._on_started)
        self.session.result_ready.connect(self._pull_result)
        self.session.failed.connect(self._on_failed)
        settings.events.view.connect(self.viewport.set_view_mode)
        settings.events.volume_yaw_deg.connect(self.session.set_volume_yaw)
        settings.events.volume_quality.connect(self.session.set_volume_quality)
        self.viewport.set_mirror(settings.mirror)
        settings.events.mirror.connect(self.viewport.set_mirror)
        self.viewport.set_shading(settings.shading)
        settings.events.shading.connect(self.viewport.set_shading)

        # Pull the newest result when the pipeline says there is one (and on a slow timer
        # as a safety net); stale ones are skipped by frame index, never queued.
        self._display_timer = QTimer(self)
        self._display_timer.timeout.connect(self._pull_result)
        self._display_timer.start(100)
        self._hud_timer = QTimer(self)
        self._hud_timer.timeout.connect(self._update_hud)
        self._hud_timer.start(500)
        self._watchdog = QTimer(self)
        self._watchdog.timeout.connect(self._check_pipeline)
        self._watchdog.start(WATCHDOG_MS)

        if settings.window_geometry:
            self.restoreGeometry(bytes.fromhex(settings.window_geometry))
        if event_mode:
            self.set_ui_hidden(True)
            self.showFullScreen()

    # -- UI ------------------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("Source", self)
        bar.setObjectName("source-toolbar")
        self.addToolBar(bar)
        self.source_combo = QComboBox(self)
        self.source_combo.setMinimumWidth(280)
        self.source_combo.setToolTip("Cameras by name, recent files, or open a file")
        self.refresh_sources()
        self.source_combo.activated.connect(self._on_source_chosen)
        bar.addWidget(self.source_combo)
        self.start_action = QAction("Start", self)
        self.start_action.triggered.connect(self.toggle_running)
        bar.addAction(self.start_action)
        self.view_combo = QComboBox(self)
        self.view_combo.addItems(["overlay", "mesh", "volume", "split"])
        self.view_combo.setCurrentText(self.settings.view)
        self.view_combo.currentTextChanged.connect(lambda v: setattr(self.settings, "view", v))
        self.settings.events.view.connect(self._sync_view_combo)
        bar.addWidget(QLabel(" View: "))
        bar.addWidget(self.view_combo)
        self.shading_combo = QComboBox(self)
        self.shading_combo.addItems(list(SHADINGS))
        self.shading_combo.setToolTip("Mesh view: the person's colours (textured), lit (phong) or clay (matcap)")
        self.shading_combo.setCurrentText(self.settings.shading)
        self.shading_combo.currentTextChanged.connect(lambda v: setattr(self.settings, "shading", v))
        self.settings.events.shading.connect(self._sync_shading_combo)
        bar.addWidget(self.shading_combo)
        shot = QAction("Screenshot", self)
        shot.setShortcut(QKeySequence("Ctrl+S"))
        shot.triggered.connect(self._screenshot_dialog)
        bar.addAction(shot)
        export = QAction("Export meshes", self)
        export.setShortcut(QKeySequence("Ctrl+E"))
        export.triggered.connect(self._export_meshes)
        bar.addAction(export)
        recenter = QAction("Recenter", self)
        recenter.setShortcut(QKeySequence("R"))
        recenter.triggered.connect(self.viewport.reset_orbit)
        bar.addAction(recenter)
        toggle_ui = QAction("Hide UI", self)
        toggle_ui.setShortcut(QKeySequence("F1"))
        toggle_ui.triggered.connect(lambda: self.set_ui_hidden(not self._ui_hidden))
        self.addAction(toggle_ui)
        self._ui_hidden = False
        self.toolbar = bar

    def _sync_shading_combo(self, shading: str) -> None:
        self.shading_combo.blockSignals(True)  # no loop back into the settings model
        self.shading_combo.setCurrentText(shading)
        self.shading_combo.blockSignals(False)

    def _sync_view_combo(self, view: str) -> None:
        self.view_combo.blockSignals(True)  # no loop back into the settings model
        self.view_combo.setCurrentText(view)
        self.view_combo.blockSignals(False)

    def refresh_sources(self) -> None:
        from engine.sources.camera import list_cameras

        self.source_combo.clear()
        try:
            cameras = list_cameras(with_modes=False)  # probing modes would open each camera
        except OSError as exc:
            log.warning("listing cameras failed: %s", exc)
            cameras = []
        for cam in cameras:
            self.source_combo.addItem(f"{cam.name} (camera {cam.index})", f"camera:{cam.index}")
        if self.settings.last_source and not self.settings.last_source.startswith("camera:"):
            self.source_combo.addItem(Path(self.settings.last_source).name, self.settings.last_source)
        self.source_combo.addItem("Synthetic test pattern", "synthetic")
        self.source_combo.addItem(OPEN_FILE_ITEM, None)
        index = self.source_combo.findData(self.settings.last_source)
        if index >= 0:
            self.source_combo.setCurrentIndex(index)

    def set_ui_hidden(self, hidden: bool) -> None:
        """Event mode: only the viewport; F1 brings the controls back."""
        self._ui_hidden = hidden
        self.toolbar.setVisible(not hidden)
        self.statusBar().setVisible(not hidden)
        if hasattr(self, "controls"):
            self.controls.setVisible(not hidden)

    # -- running ------------------------------------------------------------------------
    def _on_source_chosen(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open video or image", str(Path.home()),
                                                  "Media (*.mp4 *.avi *.mov *.mkv *.webm *.jpg *.jpeg *.png *.bmp);;All files (*)")
            if not path:
                return
            spec = path
        self.open_source(spec)

    def open_source(self, spec: str) -> None:
        self.settings.last_source = spec
        index = self.source_combo.findData(spec)
        if index < 0:
            index = max(0, self.source_combo.count() - 1)  # before "Open file…"
            self.source_combo.insertItem(index, Path(spec).name if "/" in spec or "." in spec else spec, spec)
        self.source_combo.setCurrentIndex(index)
        self.restart()

    def stage_options(self) -> StageOptions:
        s = self.settings
        return StageOptions(device=s.device, face_backend=s.face_backend, body_backend=s.body_backend,
                            volume_backend=s.volume_backend, smoothing=s.smoothing, hfov_deg=s.hfov_deg,
                            person=None if s.person < 0 else s.person, live=True,
                            volume_yaw_deg=s.volume_yaw_deg, volume_quality=s.volume_quality,
                            target_fps=s.target_fps or None, remote=self.remote_options())

    def remote_options(self) -> Any:
        """Where the heavy stages run: the saved server (`remote_url`, set by `--remote` or
        the controls), with the command line's remote flags; None: all here."""
        from engine.remote.cli import remote_options_from_args
        from engine.stage_factory import StageBuildError

        try:
            return remote_options_from_args(self._args, url=self.settings.remote_url)
        except StageBuildError as exc:  # a bad --remote-stages: say so, run here
            self.statusBar().showMessage(str(exc), 15000)
            return None

    def restart(self) -> None:
        spec = self.settings.last_source
        if not spec:
            self.statusBar().showMessage("Choose a camera or open a file to start.")
            return
        names = [n for n, on in self.settings.stages.items() if on]
        self._last_index = -1
        self.session.start(spec, names, self.stage_options(), realtime=True, loop=True,
                           camera_mode=self.settings.camera_mode or None)
        self.start_action.setText("Stop")

    def toggle_running(self) -> None:
        if self.session.pipeline is not None or self.session.loading_in_progress:
            self.session.stop()
            self.start_action.setText("Start")
        else:
            self.restart()

    def _on_loading(self, message: str) -> None:
        if self._progress is None:
            self._progress = QProgressDialog(message, None, 0, 0, self)
            self._progress.setWindowTitle("holocap — loading")
            self._progress.setWindowModality(Qt.WindowModality.WindowModal)
            self._progress.setMinimumDuration(300)
        self._progress.setLabelText(message)
        self.statusBar().showMessage(message)

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _load_camera_modes(self) -> None:
        """The running camera's modes for the mode picker, listed off the GUI thread
        (v4l2-ctl or an OpenCV probe can take a moment)."""
        import threading

        index = self.session.source_info().get("index")

        def work() -> None:
            from engine.sources.devices import list_cameras

            cams = [c for c in list_cameras(with_modes=True) if c.index == index]
            modes = [str(m) for m in cams[0].modes] if cams else []
            self.camera_modes_ready.emit(modes)

        threading.Thread(target=work, name="holocap-camera-modes", daemon=True).start()

    def _on_engine_warning(self, message: str) -> None:
        """Engine warnings (missing weights, fallbacks, reconnects) in the status bar."""
        self.warnings.append(message)
        self.statusBar().showMessage(message, 15000)

    def _on_started(self, source_id: str) -> None:
        self._close_progress()
        if source_id.startswith("camera"):
            self._load_camera_modes()
        self.statusBar().showMessage(f"running: {source_id}", 5000)

    def _on_failed(self, message: str) -> None:
        self._close_progress()
        self.start_action.setText("Start")
        log.warning("start failed: %s", message)
        if self.show_dialogs and not self.event_mode:
            QMessageBox.critical(self, "holocap", message)
        self.statusBar().showMessage(message)

    def _check_pipeline(self) -> None:
        """Watchdog: a pipeline that stopped without the user asking is restarted
        (a crashed source in a live demo), after its error was reported."""
        pipeline = self.session.pipeline
        if pipeline is None or self.session.user_stopped or pipeline.running:
            return
        if pipeline.stats().source_error:
            log.warning("pipeline stopped (%s): restarting", pipeline.stats().source_error)
            self.restart()

    # -- display ------------------------------------------------------------------------
    def _pull_result(self) -> None:
        fr = self.session.latest()
        if fr is None or fr.frame.index == self._last_index:
            return
        self._last_index = fr.frame.index
        self.viewport.set_frame_result(fr)
        self.viewport.update()  # paint now, not at the viewport's next refresh tick
        self.frames_shown += 1
        now = time.monotonic()
        self._display_times = [t for t in self._display_times[-60:] if now - t < 2.0] + [now]
        if self._outputs:
            # The clean view (no HUD, no UI) at the outputs' size, rendered off-screen.
            image = self.viewport.render_image(OUTPUT_WIDTH, OUTPUT_HEIGHT)
            for key, output in list(self._outputs.items()):
                try:
                    output.send(image, fr.frame.index, fr.frame.t_capture)
                except Exception as exc:  # one output failing must not starve the others or the view
                    self._output_failed(key, f"{type(exc).__name__}: {exc}")

    def _output_failed(self, key: str, why: str) -> None:
        """Stop that output, say so once, and switch its setting off (the user may retry)."""
        output = self._outputs.pop(key, None)
        log.error("output %s stopped: %s", key, why)
        self.statusBar().showMessage(f"output {key} stopped: {why}", 15000)
        if output is not None:
            try:
                output.close()
            except Exception as exc:  # closing a broken device may fail too; it is gone either way
                log.warning("closing output %s: %s", key, exc)
        if key == "vcam":
            self.settings.virtual_camera = False
        elif key == "mjpeg":
            self.settings.mjpeg_address = ""

    def _update_hud(self) -> None:
        stats = self.session.stats()
        if stats is None:
            return
        hud = hud_stats(stats, self.session, self.viewport.render_fps, self.settings.volume_quality)
        self.viewport.set_hud_stats(hud if self.settings.show_hud else {})
        for key, output in list(self._outputs.items()):  # failed on its own thread (device gone)
            why = getattr(getattr(output, "stats", None), "failed", None)
            if why:
                self._output_failed(key, why)
        device = self.settings.device
        self.status_label.setText(f"device: {device} | frames {stats.frames_processed} | dropped {stats.frames_dropped}")

    def _sync_outputs(self) -> None:
        """Start/stop the virtual camera and MJPEG server to match the settings."""
        from engine.outputs.mjpeg import MjpegServer, MjpegSettings, parse_host_port
        from engine.outputs.virtual_camera import VirtualCamera, VirtualCameraSettings

        wanted = {"vcam": self.settings.virtual_camera, "mjpeg": bool(self.settings.mjpeg_address)}
        for key, on in wanted.items():
            if not on and key in self._outputs:
                self._outputs.pop(key).close()
            elif on and key not in self._outputs:
                try:
                    if key == "vcam":
                        output = VirtualCamera(VirtualCameraSettings())
                    else:
                        host, port = parse_host_port(self.settings.mjpeg_address)
                        output = MjpegServer(MjpegSettings(host=host, port=port))
                    output.start()
                    if key == "mjpeg":
                        self.statusBar().showMessage(f"MJPEG stream at {output.url('/')}", 10000)
                except Exception as exc:  # no virtual camera device etc.: tell the user how to fix it
                    log.warning("output %s failed: %s", key, exc)
                    if self.show_dialogs:
                        QMessageBox.warning(self, "holocap output", str(exc))
                    setattr(self.settings, "virtual_camera" if key == "vcam" else "mjpeg_address",
                            False if key == "vcam" else "")
                    continue
                self._outputs[key] = output

    def _export_meshes(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the next face/body meshes to", str(Path.home()))
        if not folder:
            return
        stages = self.session.request_export(Path(folder))
        self.statusBar().showMessage(
            f"exporting the next {' and '.join(stages)} mesh to {folder}" if stages
            else "no face or body stage is running", 5000)

    def _screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "holocap.png", "PNG (*.png)")
        if path:
            self.save_screenshot(Path(path))

    def save_screenshot(self, path: Path) -> None:
        """The whole window, with the viewport (and its HUD) grabbed from its framebuffer:
        a plain widget grab leaves out what QPainter draws over the GL content."""
        from PyQt6.QtGui import QPainter

        path.parent.mkdir(parents=True, exist_ok=True)
        pixmap = self.grab()
        view = self.viewport.grabFramebuffer()
        painter = QPainter(pixmap)
        painter.drawImage(self.viewport.mapTo(self, self.viewport.rect().topLeft()), view)
        painter.end()
        pixmap.save(str(path))
        log.info("screenshot saved to %s", path)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self.log_bridge.detach()
        self.settings.window_geometry = bytes(self.saveGeometry()).hex()
        for output in self._outputs.values():
            output.close()
        self._outputs.clear()
        self.session.close()
        save_settings(self.settings)
        super().closeEvent(event)
