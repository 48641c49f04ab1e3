"""The controls dock: stage toggles, back-ends, device, smoothing, outputs, model info.

Widgets write to the AppSettings model and listen to its events (napari style): the
model never knows about the widgets, and signals are blocked while syncing so updates
never loop.
"""
from __future__ import annotations

import logging

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDockWidget, QDoubleSpinBox,
                             QFormLayout, QGroupBox, QHeaderView, QLineEdit, QMessageBox,
                             QPushButton, QSlider, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine.settings import AppSettings

log = logging.getLogger(__name__)

DEFAULT_MODE_LABEL = "default (1280x720@30, MJPG)"

# back-end choice -> manifest models that must be installed for it
BACKEND_MODELS = {
    "face": {"auto": (), "anny": (), "bfm": ("bfm-noneck-v3",), "tddfa": ("tddfa-mb05", "bfm-noneck-v3")},
    "body": {"auto": (), "anny": (), "hmr": ("spin", "smpl"), "pointhmr": ("pointhmr", "smpl")},
    "volume": {"auto": (), "field": (), "pifu": ("pifu-netg",)},
}


def model_states() -> dict[str, str]:
    """manifest name -> installed | missing | corrupt (empty when the manager is absent)."""
    try:
        from engine.weights.manifest import load_manifest
        from engine.weights.store import model_status
    except ImportError as exc:
        log.warning("model manager unavailable: %s", exc)
        return {}
    return {entry.name: model_status(entry.name).state for entry in load_manifest()}


class ControlsDock(QDockWidget):
    restart_requested = pyqtSignal()  # stage/back-end/device change: rebuild the pipeline
    outputs_changed = pyqtSignal()

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__("Controls", parent)
        self.setObjectName("controls-dock")
        self.settings = settings
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.addWidget(self._stages_box())
        layout.addWidget(self._backends_box())
        layout.addWidget(self._view_box())
        layout.addWidget(self._outputs_box())
        about = QPushButton("About models…")
        about.clicked.connect(self.show_models)
        layout.addWidget(about)
        layout.addStretch(1)
        self.setWidget(body)

    # -- groups -----------------------------------------------------------------------
    def _stages_box(self) -> QGroupBox:
        box = QGroupBox("Stages")
        form = QVBoxLayout(box)
        self.stage_checks: dict[str, QCheckBox] = {}
        for name in ("face", "body", "volume"):
            check = QCheckBox(name)
            check.setChecked(self.settings.stages.get(name, False))
            check.toggled.connect(lambda on, n=name: self._set_stage(n, on))
            form.addWidget(check)
            self.stage_checks[name] = check
        self.settings.events.stages.connect(self._sync_stages)
        return box

    def _set_stage(self, name: str, on: bool) -> None:
        stages = dict(self.settings.stages)
        stages[name] = on
        if stages.get("volume"):
            stages["body"] = True  # the offline volume is built from the body fit
        self.settings.stages = stages
        self.restart_requested.emit()

    def _sync_stages(self, stages: dict) -> None:
        for name, check in self.stage_checks.items():
            check.blockSignals(True)
            check.setChecked(bool(stages.get(name)))
            check.blockSignals(False)

    def _backends_box(self) -> QGroupBox:
        box = QGroupBox("Back-ends")
        form = QFormLayout(box)
        states = model_states()
        self.backend_combos: dict[str, QComboBox] = {}
        for stage, choices in BACKEND_MODELS.items():
            combo = QComboBox()
            for choice, needs in choices.items():
                combo.addItem(choice, choice)
                missing = [m for m in needs if states.get(m) != "installed"]
                if missing:
                    item = combo.model().item(combo.count() - 1)
                    item.setEnabled(False)  # paper back-ends only with installed weights
                    item.setToolTip(f"needs: {', '.join(missing)} (python main.py weights fetch NAME)")
            combo.setCurrentIndex(max(0, combo.findData(getattr(self.settings, f"{stage}_backend"))))
            combo.currentIndexChanged.connect(
                lambda _i, s=stage, c=combo: self._set_and_restart(f"{s}_backend", c.currentData()))
            form.addRow(stage, combo)
            self.backend_combos[stage] = combo
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        if not _cuda_available():
            item = self.device_combo.model().item(2)
            item.setEnabled(False)
            item.setToolTip("no CUDA device found: torch runs on the CPU")
        self.device_combo.setCurrentText(self.settings.device)
        self.device_combo.currentTextChanged.connect(lambda d: self._set_and_restart("device", d))
        form.addRow("device", self.device_combo)
        server = QLineEdit(self.settings.remote_url)
        server.setPlaceholderText("http://gpu-box:8000 (empty: all here)")
        server.setToolTip("a `holocap serve` that runs face, body and volume (token: HOLOCAP_TOKEN)")
        server.editingFinished.connect(lambda: self._set_server(server))
        form.addRow("GPU server", server)
        self.server_edit = server
        return box

    def _set_server(self, edit: QLineEdit) -> None:
        from engine.settings_schema import check

        text = edit.text().strip()
        problem = check("remote_url", text)
        if problem:  # keep the old server; say what is wrong with the new one
            edit.setStyleSheet("border: 1px solid #c33;")
            edit.setToolTip(f"{text!r}: {problem}")
            return
        edit.setStyleSheet("")
        self._set_and_restart("remote_url", text)

    def _view_box(self) -> QGroupBox:
        box = QGroupBox("View")
        form = QFormLayout(box)
        for field, label in (("smoothing", "smoothing"), ("mirror", "mirror"), ("show_hud", "HUD")):
            check = QCheckBox()
            check.setChecked(getattr(self.settings, field))
            check.toggled.connect(lambda on, f=field: self._set_field(f, on))
            form.addRow(label, check)
        fov = QDoubleSpinBox()
        fov.setRange(30.0, 120.0)
        fov.setSuffix("° hfov")
        fov.setValue(self.settings.hfov_deg)
        fov.valueChanged.connect(lambda v: self._set_and_restart("hfov_deg", float(v)))
        form.addRow("camera fov", fov)
        # The camera's own modes (filled when a camera starts), or type one: WxH@fps[:FOURCC].
        self.mode_combo = QComboBox()
        self.mode_combo.setEditable(True)
        self.mode_combo.addItem(DEFAULT_MODE_LABEL, "")
        if self.settings.camera_mode:
            self.mode_combo.addItem(self.settings.camera_mode, self.settings.camera_mode)
            self.mode_combo.setCurrentIndex(1)
        self.mode_combo.activated.connect(self._on_mode_chosen)
        self.mode_combo.lineEdit().editingFinished.connect(self._on_mode_chosen)
        form.addRow("camera mode", self.mode_combo)
        person = QComboBox()
        person.addItem("largest / most central", -1)
        for k in range(6):
            person.addItem(f"{k + 1}. from the left", k)
        person.setCurrentIndex(max(0, person.findData(self.settings.person)))
        person.currentIndexChanged.connect(lambda _i: self._set_and_restart("person", person.currentData()))
        form.addRow("person", person)
        yaw = QSlider(Qt.Orientation.Horizontal)
        yaw.setRange(-180, 180)
        yaw.setValue(int(round(self.settings.volume_yaw_deg)))
        yaw.setToolTip("orbit angle of the volumetric view")
        yaw.valueChanged.connect(lambda v: setattr(self.settings, "volume_yaw_deg", float(v)))
        form.addRow("volume yaw", yaw)
        from engine.volume.quality import QUALITY_CHOICES

        quality = QComboBox()
        quality.addItems(list(QUALITY_CHOICES))
        quality.setToolTip("volume lattice: auto steps 65 / 129 / 257 to hold the frame rate")
        quality.setCurrentText(self.settings.volume_quality)
        quality.currentTextChanged.connect(lambda q: setattr(self.settings, "volume_quality", q))
        form.addRow("volume quality", quality)
        self.quality_combo = quality
        return box

    def _outputs_box(self) -> QGroupBox:
        box = QGroupBox("Outputs")
        form = QFormLayout(box)
        vcam = QCheckBox()
        vcam.setChecked(self.settings.virtual_camera)
        vcam.toggled.connect(lambda on: self._set_output("virtual_camera", on))
        form.addRow("virtual camera", vcam)
        mjpeg = QLineEdit(self.settings.mjpeg_address)
        mjpeg.setPlaceholderText("127.0.0.1:8080 (empty: off)")
        mjpeg.editingFinished.connect(lambda: self._set_output("mjpeg_address", mjpeg.text().strip()))
        form.addRow("MJPEG stream", mjpeg)
        return box

    def set_camera_modes(self, modes: list[str]) -> None:
        """Offer a camera's modes (e.g. "1280x720@30:MJPG"), keeping the current choice."""
        self.mode_combo.blockSignals(True)
        current = self.settings.camera_mode
        self.mode_combo.clear()
        self.mode_combo.addItem(DEFAULT_MODE_LABEL, "")
        for mode in modes:
            self.mode_combo.addItem(mode, mode)
        index = self.mode_combo.findData(current) if current else 0
        if index < 0:
            self.mode_combo.addItem(current, current)
            index = self.mode_combo.count() - 1
        self.mode_combo.setCurrentIndex(index)
        self.mode_combo.blockSignals(False)

    def _on_mode_chosen(self, *_args) -> None:
        text = self.mode_combo.currentText().strip()
        data = self.mode_combo.currentData()
        value = data if isinstance(data, str) and self.mode_combo.itemText(self.mode_combo.currentIndex()) == text \
            else ("" if text == DEFAULT_MODE_LABEL else text)
        self._set_and_restart("camera_mode", value)

    # -- helpers ----------------------------------------------------------------------
    def _set_field(self, field: str, value) -> None:
        setattr(self.settings, field, value)
        if field == "smoothing":
            self.restart_requested.emit()

    def _set_and_restart(self, field: str, value) -> None:
        if getattr(self.settings, field) != value:
            setattr(self.settings, field, value)
            self.restart_requested.emit()

    def _set_output(self, field: str, value) -> None:
        setattr(self.settings, field, value)
        self.outputs_changed.emit()

    def show_models(self) -> None:
        ModelsDialog(self).exec()


class ModelsDialog(QDialog):
    """What third-party weights are installed, with their licences."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About models")
        self.resize(760, 320)
        layout = QVBoxLayout(self)
        table = QTableWidget(0, 5, self)
        table.setHorizontalHeaderLabels(["model", "back-end", "state", "licence", "note"])
        try:
            from engine.weights.manifest import load_manifest
            from engine.weights.store import model_status

            entries = load_manifest()
        except Exception as exc:  # a broken manifest must not take the app down
            QMessageBox.warning(self, "holocap", f"cannot read the model manifest: {exc}")
            entries = []
        table.setRowCount(len(entries) + 2)
        rows = [("mediapipe 0.10.21 (bundled)", "perception", "installed", "Apache-2.0", "offline default"),
                ("Anny body/head", "anny", "installed", "Apache-2.0 code, CC0 data", "offline default")]
        for entry in entries:
            status = model_status(entry.name)
            rows.append((entry.name, entry.backend, status.state, entry.licence, status.message))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(str(value)))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(table)
        self.table = table


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
