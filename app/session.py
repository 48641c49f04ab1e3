"""The capture session behind the window: source + stages + pipeline, off the GUI thread.

Opening a source and building stages (model loading) happen on a background thread with
progress messages; the pipeline itself runs on its own threads. The window pulls the
newest FrameResult on its timer (`latest()`), so nothing is queued per frame.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from dataclasses import replace
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from engine.pipeline import FrameResult, Pipeline
from engine.stage_protocol import Stage
from engine.stage_factory import StageOptions, resolve_stage_names

log = logging.getLogger(__name__)


class CaptureSession(QObject):
    """Signals are emitted from worker threads; Qt queues them to the GUI thread."""

    loading = pyqtSignal(str)  # progress message while models load
    started = pyqtSignal(str)  # source id
    stopped = pyqtSignal()
    failed = pyqtSignal(str)  # one-line message for a dialog
    result_ready = pyqtSignal()  # a newer FrameResult is available: pull it with latest()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._source: Any = None
        self._stages: dict[str, Stage] = {}  # built once, reused across sources and toggles
        self._stage_key: dict[str, StageOptions] = {}
        self._loader: threading.Thread | None = None
        self.source_spec = ""
        self.user_stopped = True
        self._closing = False
        self.pace_fps: float | None = None  # play video files at this rate (benchmarks)

    # -- control -----------------------------------------------------------------------
    def start(self, source_spec: str, stage_names: list[str], options: StageOptions,
              realtime: bool = True, loop: bool = True, camera_mode: str | None = None) -> None:
        """Stop what runs, then open the source and build stages on a background thread."""
        self.stop()
        self.user_stopped = False
        self.source_spec = source_spec
        self._loader = threading.Thread(
            target=self._load_and_run, name="holocap-loader", daemon=True,
            args=(source_spec, stage_names, options, realtime, loop, camera_mode))
        self._loader.start()

    def _load_and_run(self, spec: str, names: list[str], options: StageOptions, realtime: bool,
                      loop: bool, camera_mode: str | None) -> None:
        from engine.sources.factory import open_source
        from engine.sources.images import ImageSource

        try:
            self._emit(self.loading, f"opening {spec}…")
            source = open_source(spec, loop=loop, camera_mode=camera_mode or None, realtime=realtime,
                                 pace_fps=self.pace_fps)
            static = isinstance(source, ImageSource)  # photos: detect on every frame
            # The volume's budget follows the source (at most 30 fps) unless a target is set.
            target = options.target_fps or min(30.0, float(getattr(source, "nominal_fps", 0.0) or 30.0))
            options = replace(options, static_images=static, target_fps=target,
                              on_progress=lambda message: self._emit(self.loading, message))
            stages = self._stages_for(resolve_stage_names(names), options)
        except Exception as exc:  # shown to the user as a dialog; details in the log
            log.warning("could not start %s: %s", spec, exc, exc_info=not _is_user_error(exc))
            self._emit(self.failed, str(exc) if _is_user_error(exc) else f"{type(exc).__name__}: {exc}")
            return
        if self._closing:  # the window closed while models loaded: start nothing
            source.close()
            return
        pipeline = Pipeline(source, stages, lossless=False, owns_stages=False)
        # A bare notification, queued to the GUI thread; the window then pulls the newest
        # result, so a busy GUI coalesces notifications instead of queueing frames.
        pipeline.add_consumer(lambda _fr: self._emit(self.result_ready))
        with self._lock:
            self._pipeline, self._source = pipeline, source
        pipeline.start()
        self._emit(self.started, getattr(source, "source_id", spec))

    def _emit(self, signal, *args) -> None:
        """Emit from the loader thread unless the session is closing (its Qt object may be
        gone by the time a slow model load finishes)."""
        if self._closing:
            return
        try:
            signal.emit(*args)
        except RuntimeError as exc:  # "wrapped C/C++ object ... has been deleted"
            log.debug("session signal dropped after close: %s", exc)

    def _stages_for(self, names: list[str], options: StageOptions) -> list[Stage]:
        """Reuse stages built with the same options (models stay loaded); reset them for
        the new source; build the missing ones."""
        stages = []
        for name in names:
            # Yaw, quality and budget change live, without a rebuild.
            key = replace(options, on_progress=None, volume_yaw_deg=0.0, volume_quality=None, target_fps=None)
            stage = self._stages.get(name)
            if stage is not None and self._stage_key.get(name) == key:
                stage.reset()
                if hasattr(stage, "set_quality") and options.volume_quality:
                    stage.set_quality(options.volume_quality, options.target_fps)
            else:
                if stage is not None:
                    stage.close()
                stage = _build_one(name, options)
                self._stages[name], self._stage_key[name] = stage, key
            stages.append(stage)
        return stages

    def stop(self) -> None:
        with self._lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.stop()
            # Stages are kept for reuse; the source is closed by stop().
            self.stopped.emit()
        self.user_stopped = True

    def close(self) -> None:
        self._closing = True
        if self._loader is not None:
            self._loader.join(timeout=2.0)  # a model load in progress finishes on its own
        self.stop()
        for stage in self._stages.values():
            try:
                stage.close()
            except Exception:
                log.exception("closing stage %s failed", stage.name)
        self._stages.clear()

    def set_volume_quality(self, quality: str) -> None:
        """Fix the live volume's lattice level, or let it adapt ("auto"), from the next frame."""
        stage = self._stages.get("volume")
        if stage is not None and hasattr(stage, "set_quality"):
            stage.set_quality(quality)

    def volume_level(self) -> str | None:
        """The live volume's lattice level in use (None without a volume stage)."""
        stage = self._stages.get("volume")
        return getattr(stage, "quality_level", None) if stage is not None else None

    def remote_status(self) -> dict[str, str]:
        """Where each stage sent to a server runs now: "remote 23 ms" (the median round trip)
        or "local (server away)"; empty without --remote."""
        status = {}
        for name, stage in self._stages.items():
            where = getattr(stage, "where", None)
            if where is None:
                continue
            rtt = stage.round_trip_ms
            status[name] = (f"remote {rtt:.0f} ms" if rtt is not None else "remote") if where == "remote" \
                else "local (server away)"
        return status

    def set_volume_yaw(self, yaw_deg: float) -> None:
        """Turn the live volumetric view without rebuilding anything."""
        stage = self._stages.get("volume")
        if stage is not None and hasattr(stage, "set_yaws"):
            stage.set_yaws((float(yaw_deg),))

    def request_export(self, folder: Path) -> list[str]:
        """Ask the running face/body stages to write their next mesh into `folder`;
        returns the names of the stages that will."""
        asked = []
        for name in ("face", "body", "volume"):
            stage = self._stages.get(name)
            if stage is not None and hasattr(stage, "request_export"):
                stage.request_export(folder)
                asked.append(name)
        return asked

    # -- state -------------------------------------------------------------------------
    def latest(self) -> FrameResult | None:
        pipeline = self._pipeline
        return pipeline.latest() if pipeline is not None else None

    def source_info(self) -> dict:
        """The running source's info() (cameras: requested / negotiated / measured fps)."""
        source = self._source
        try:
            return dict(source.info()) if source is not None and hasattr(source, "info") else {}
        except (OSError, RuntimeError) as exc:  # a camera going away mid-query
            log.debug("source info unavailable: %s", exc)
            return {}

    def stats(self):
        pipeline = self._pipeline
        return pipeline.stats() if pipeline is not None else None

    @property
    def pipeline(self) -> Pipeline | None:
        return self._pipeline

    @property
    def loading_in_progress(self) -> bool:
        return self._loader is not None and self._loader.is_alive()


def _build_one(name: str, options: StageOptions) -> Stage:
    from engine.stage_factory import build_stage

    return build_stage(name, options)


def _is_user_error(exc: BaseException) -> bool:
    from engine.sources.errors import SourceError
    from engine.stage_factory import StageBuildError

    return isinstance(exc, (SourceError, StageBuildError))
