"""Build the pipeline's stages by name, in dependency order.

Stage modules are imported only when asked for, so a run with `--stages perception`
never loads torch models or Anny.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from engine.stage_protocol import Stage

log = logging.getLogger(__name__)

ORDER = ("perception", "face", "body", "volume")
REQUIRES = {"face": ("perception",), "body": ("perception",), "volume": ("perception", "body")}


class StageBuildError(Exception):
    """A stage could not be constructed; the message is one line for the user."""


@dataclass(frozen=True)
class StageOptions:
    device: str = "auto"
    face_backend: str = "auto"
    body_backend: str = "auto"
    volume_backend: str = "auto"
    smoothing: bool = True
    hfov_deg: float = 60.0
    static_images: bool = False  # photos / image folders: detect on every frame
    person: int | None = None  # None: largest/most central; k: the k-th person from the left
    export_dir: Path | None = None  # per-frame mesh export when set
    on_progress: Callable[[str], None] | None = None  # model-loading messages for the GUI
    live: bool = False  # interactive use: the volume renders one 129-voxel view, not three 257s
    volume_yaw_deg: float = 30.0  # the live volume view's orbit angle
    volume_quality: str | None = None  # None: the settings' schedule; auto | low | medium | high
    target_fps: float | None = None  # the volume's frame-time budget (None: 30)
    mesh_colours: bool = True  # sample the person's colours onto face/body meshes (see engine.mesh_colours)
    remote: Any = None  # engine.remote.client.RemoteOptions: these stages run on a `holocap serve` server


def resolve_stage_names(requested: list[str] | tuple[str, ...]) -> list[str]:
    """Validate names and add the stages they need; returns them in pipeline order."""
    names = {n.strip().lower() for n in requested if n.strip()}
    unknown = names - set(ORDER)
    if unknown:
        raise StageBuildError(f"unknown stage(s): {', '.join(sorted(unknown))}; choose from {', '.join(ORDER)}")
    for name in list(names):
        for dep in REQUIRES.get(name, ()):
            if dep not in names:
                log.info("stage %s needs %s: adding it", name, dep)
                names.add(dep)
    return [n for n in ORDER if n in names]


def _progress(options: StageOptions, message: str) -> None:
    log.info(message)
    if options.on_progress is not None:
        options.on_progress(message)


def build_perception(options: StageOptions) -> Stage:
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    _progress(options, "loading mediapipe face mesh, pose and segmentation…")
    return PerceptionStage(PerceptionSettings(static_image_mode=options.static_images,
                                              person=options.person))


def build_face(options: StageOptions) -> Stage:
    from engine.face.stage import FaceSettings, FaceStage

    _progress(options, "loading the face model…")
    settings = FaceSettings(backend=options.face_backend, smoothing=options.smoothing,
                            hfov_deg=options.hfov_deg, export_dir=options.export_dir,
                            device=options.device, still_images=options.static_images,
                            colours=options.mesh_colours)
    return FaceStage(settings, on_progress=options.on_progress)


def build_body(options: StageOptions) -> Stage:
    from engine.body.stage import BodySettings, BodyStage

    _progress(options, "loading the body model (the first run builds and caches Anny, ~1 min)…")
    settings = BodySettings(backend=options.body_backend, smoothing=options.smoothing,
                            hfov_deg=options.hfov_deg, export_dir=options.export_dir,
                            device=options.device, person=options.person, still_images=options.static_images,
                            colours=options.mesh_colours)
    return BodyStage(settings, on_progress=options.on_progress)


def build_volume(options: StageOptions) -> Stage:
    from engine.volume.stage import VolumeSettings, VolumeStage

    _progress(options, "preparing the volumetric capture…")
    if options.live:
        live = VolumeSettings.live(options.volume_backend, options.hfov_deg)
        settings = replace(live, yaws_deg=(options.volume_yaw_deg,), export_dir=options.export_dir,
                           quality=options.volume_quality or live.quality, target_fps=options.target_fps)
    else:
        settings = VolumeSettings(backend=options.volume_backend, hfov_deg=options.hfov_deg,
                                  export_dir=options.export_dir, quality=options.volume_quality,
                                  target_fps=options.target_fps)
    return VolumeStage(settings, device=options.device)


BUILDERS: dict[str, Callable[[StageOptions], Stage]] = {
    "perception": build_perception, "face": build_face, "body": build_body, "volume": build_volume,
}


def build_stage(name: str, options: StageOptions) -> Stage:
    """One stage; with `options.remote` naming it, wrapped to run on the server (its local
    copy is built too: it takes over within one frame when the server stops answering)."""
    stage = BUILDERS[name](options)
    remote = options.remote
    if remote is None or name not in remote.stages:
        return stage
    from engine.remote.client import RemoteStage
    from engine.remote.session import SessionSpec

    _progress(options, f"connecting the {name} stage to {remote.url}…")
    return RemoteStage(stage, remote, SessionSpec.from_options(options, remote.lossless))


def build_stages(names: list[str] | tuple[str, ...], options: StageOptions) -> list[Stage]:
    """Construct the named stages (plus what they need) in order; closes what was built
    if a later one fails, and raises StageBuildError with a one-line reason."""
    stages: list[Stage] = []
    try:
        for name in resolve_stage_names(names):
            try:
                stages.append(build_stage(name, options))
            except ImportError as exc:
                raise StageBuildError(f"the {name} stage is not available in this build: {exc}") from exc
    except Exception:
        for stage in stages:
            stage.close()
        raise
    return stages
