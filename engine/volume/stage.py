"""The volume stage: the person as an implicit field, localised and directly rendered from a
few orbit angles every frame.

Back-ends: "field" (offline default, engine.volume.offline_field: the fitted body carved by
the silhouette, coloured from the frame) and "pifu" (PIFu netG (+ netC) from installed
weights, engine.volume.pifu). "auto" uses PIFu only when its weights are installed and
verified, and otherwise says once what is missing and uses the offline field.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from engine.body.result import BodyResult
from engine.filters import OneEuroFilter
from engine.frame import Frame
from engine.perception.result import PerceptionResult
from engine.stage_protocol import StageContext
from engine.volume.localize import check_resolutions
from engine.volume.offline_field import CubeMap, OfflineFieldSettings, build_offline_field, warm_up
from engine.volume.quality import QualityController, budget_ms_for
from engine.volume.render import RenderedView, normal_to_bgr8, render_view, stack_silhouettes, to_bgr8
from engine.volume.result import VolumeResult
from engine.settings_schema import VOLUME_BACKENDS as BACKENDS  # one list for stages, settings and CLI

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class VolumeSettings:
    """backend: "auto" | "field" | "pifu".
    hfov_deg: the input camera's horizontal field of view; the offline field uses the body
        result's own camera (fitted with this same setting), so it is kept for the common
        stage-options signature.
    yaws_deg: orbit angles of the rendered views (0 = the input camera's view; positive
        moves the viewer round to the camera's left, see engine.volume.render).
    pitch_deg: the views' common pitch.
    resolutions: the coarse-to-fine schedule; the views are resolutions[-1] pixels square
        (color_px when that is finer and a colour field is there).
    mode: "faster" (live: no queries at the last level) or "lossless".
    smoothing: steady the offline field's cube over time (One Euro on its centre and size),
        so the views do not jitter with the body's bounding box.
    field: the offline field's settings. pifu_model, pifu_color_model: manifest names of
        PIFu's netG and netC (None = no colour net: shaded grey).
    cpu_threads: torch threads while this stage runs on the CPU, restored afterwards (None =
        leave them): the lattice work is many small ops, and on a 2-core machine shared with
        capture and mediapipe two threads mostly wait for each other (1 thread measured
        2.5-6x faster than 2 here).
    export_dir: where `request_export()` writes meshes when given no path (None = not set).
    quality: None = always `resolutions`; "auto" = step the lattice between the levels of
        engine.volume.quality (65 -> 129 -> 257) to hold the frame-time budget; "low" /
        "medium" / "high" = that level, fixed.
    target_fps: the frame-time budget for "auto" is 1000 / target_fps ms (None: 30).
    color_px: views whose lattice is coarser are refined to this many pixels square with
        colours asked of the colour field per pixel (engine.volume.refine), so
        the live "low" level (65) shows a recognisable face. Measured on the talking-head
        clip, 2-core CPU, one view: 129 costs ~3 ms more (37 -> 40 ms), 257 ~11 ms, which
        took the live window's volume rate from 10 to 6.6 fps and face/body's display rate
        down 9 %: 129 keeps most of the sharpness for little. None keeps the lattice's
        own colours."""

    backend: str = "auto"
    hfov_deg: float = 60.0
    yaws_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)
    pitch_deg: float = 0.0
    resolutions: tuple[int, ...] = (17, 33, 65, 129, 257)
    mode: str = "faster"
    smoothing: bool = True
    field: OfflineFieldSettings = field(default_factory=OfflineFieldSettings)
    pifu_model: str = "pifu-netg"
    pifu_color_model: str | None = "pifu-netc"
    cpu_threads: int | None = 1
    export_dir: Path | None = None
    quality: str | None = None
    target_fps: float | None = None
    color_px: int | None = 129

    @property
    def size(self) -> int:
        return int(self.resolutions[-1])

    @classmethod
    def live(cls, backend: str = "auto", hfov_deg: float = 60.0) -> "VolumeSettings":
        """The interactive setting: one 129 x 129 view from the input camera's side, the one
        that keeps localisation + rendering of the offline field at >= 15 fps on a 2-core CPU
        (docs/PERFORMANCE.md, volume_field). The defaults (three 257 x 257 views) are for
        headless runs."""
        return cls(backend=backend, hfov_deg=hfov_deg, yaws_deg=(0.0,), resolutions=(17, 33, 65, 129),
                   quality="auto")


# (occupancy, colour or None, stats) of one frame, or None when there is nothing to render.
FieldFns = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor] | None, dict]


class VolumeStage:
    """process(frame, ctx) reads ctx["body"] (BodyResult) and ctx["perception"]
    (PerceptionResult) and returns a VolumeResult with one view per yaw, or None when either
    is missing or the person is not in view.

    pifu_model: an already loaded PifuModel (tests, tools); otherwise "auto"/"pifu" load the
    installed weights named in the settings."""

    name = "volume"
    requires: tuple[str, ...] = ("perception", "body")  # the stages whose results process() reads

    def __init__(self, settings: VolumeSettings | None = None, device: str = "auto",
                 pifu_model: Any = None) -> None:
        from engine.device import resolve_device

        self.settings = settings or VolumeSettings()
        if self.settings.backend not in BACKENDS:
            raise ValueError(f"unknown volume backend {self.settings.backend!r}: use one of {BACKENDS}")
        check_resolutions(self.settings.resolutions)
        self._quality = None if self.settings.quality is None else \
            QualityController(self.settings.quality, budget_ms_for(self.settings.target_fps))
        self.device = resolve_device(device)
        self._cube_filter = OneEuroFilter(min_cutoff=0.3, beta=0.5)
        self._cube_last: np.ndarray | None = None  # (4,) steadied centre and half, metres
        self._export_next: Path | None = None
        self._said_no_mask = False
        self._pifu = pifu_model
        if self._pifu is None and self.settings.backend in ("auto", "pifu"):
            self._pifu = self._load_pifu()
        if self._pifu is None:
            warm_up()
            log.info("volume back-end: offline field (fitted body carved by the silhouette)")

    @property
    def backend(self) -> str:
        return "pifu" if self._pifu is not None else "field"

    def _load_pifu(self) -> Any:
        from engine.volume.pifu import load_installed

        model = load_installed(self.settings.pifu_model, self.settings.pifu_color_model, self.device)
        if model is None:
            log.info("volume: PIFu weights not installed (`python main.py weights` lists them): "
                     "using the offline field")
        else:
            log.info("volume back-end: PIFu on %s", self.device)
        return model

    @property
    def quality_level(self) -> str | None:
        """The lattice level in use ("low" / "medium" / "high"), None when fixed by settings."""
        return None if self._quality is None else self._quality.level

    def set_quality(self, quality: str, target_fps: float | None = None) -> None:
        """Change the quality ("auto" or a fixed level) and, if given, the target fps, from
        the next frame on, without rebuilding anything."""
        budget = budget_ms_for(target_fps if target_fps is not None else self.settings.target_fps)
        if self._quality is None:
            self._quality = QualityController(quality, budget)
        else:
            self._quality.set_quality(quality)
            self._quality.set_budget_ms(budget)
        self.settings = dataclasses.replace(self.settings, quality=self._quality.quality,
                                            target_fps=target_fps if target_fps is not None else self.settings.target_fps)

    def set_yaws(self, yaws_deg: tuple[float, ...]) -> None:
        """Render these orbit angles from the next frame on (each view costs its own
        localisation, so a viewer showing one angle should ask for that one only)."""
        self.settings = dataclasses.replace(self.settings, yaws_deg=tuple(float(y) for y in yaws_deg))

    def request_export(self, path: str | Path | None = None) -> None:
        """Write the next frame's surface as a coloured mesh to `path` (a file, or a folder for
        volume_<frame>_<backend>.ply; default settings.export_dir). See export_volume_mesh."""
        if path is None and self.settings.export_dir is None:
            raise ValueError("no export path given and VolumeSettings.export_dir is not set")
        self._export_next = Path(path) if path is not None else Path(self.settings.export_dir)

    def process(self, frame: Frame, ctx: StageContext) -> VolumeResult | None:
        body: BodyResult | None = ctx.get("body")
        perception: PerceptionResult | None = ctx.get("perception")
        if body is None or perception is None:
            return None
        threads = self.settings.cpu_threads if self.device.type == "cpu" else None
        with torch_threads(threads):
            return self._process(frame, body, perception)

    def _process(self, frame: Frame, body: BodyResult, perception: PerceptionResult) -> VolumeResult | None:
        t0 = time.perf_counter()
        resolutions = self.settings.resolutions if self._quality is None else self._quality.resolutions
        fns = self._pifu_fns(frame, perception) if self._pifu is not None else \
            self._field_fns(frame, body, perception, int(resolutions[-1]))
        if fns is None:
            return None
        occupancy, color, stats = fns
        stats["ms_build"] = (time.perf_counter() - t0) * 1e3
        views = [render_view(occupancy, color, yaw, self.settings.pitch_deg, resolutions,
                             self.settings.mode, device=self.device, color_size=self.settings.color_px)
                 for yaw in self.settings.yaws_deg]
        stats["resolution"] = int(resolutions[-1])
        if self._quality is not None:
            stats["quality"] = self._quality.level
            self._quality.update((time.perf_counter() - t0) * 1e3)
        if self._export_next is not None:
            target, self._export_next = self._export_next, None
            if target.suffix == "":
                target = target / f"volume_{frame.index:06d}_{self.backend}.ply"
            cube = CubeMap(np.asarray(stats["cube_centre_m"]), stats["cube_half_m"]) if "cube_half_m" in stats else None
            export_volume_mesh(occupancy, color, target, resolutions, cube, self.device)
        return volume_result(views, self.settings.yaws_deg, stats, self.backend)

    def _field_fns(self, frame: Frame, body: BodyResult, perception: PerceptionResult,
                   size: int) -> FieldFns | None:
        if perception.segmentation is None and not self._said_no_mask:
            log.info("volume: no person mask (segmentation off): the offline field is the body alone, uncarved")
            self._said_no_mask = True
        def steady(cube: CubeMap) -> CubeMap:
            if self._cube_last is not None and is_cut(cube, self._cube_last):
                self._cube_filter.reset()  # another photo or person: start afresh
            self._cube_last = self._cube_filter(np.append(cube.centre, cube.half), frame.t_filter)
            return steady_cube(cube, self._cube_last)

        f = build_offline_field(body, perception.segmentation, frame.image, size, self.settings.field,
                                device=self.device, cube_filter=steady if self.settings.smoothing else None)
        if f is None:
            return None
        return f.occupancy, f.color, dict(f.stats)

    def _pifu_fns(self, frame: Frame, perception: PerceptionResult) -> FieldFns | None:
        from engine.volume.pifu_field import pifu_field_for_frame

        if perception.segmentation is None:
            return None
        f = pifu_field_for_frame(self._pifu, frame.image, perception.segmentation)
        if f is None:
            return None
        return f.occupancy, (f.color if self._pifu.has_color else None), {}

    def reset(self) -> None:
        """Forget the steadied cube (each frame's field is otherwise built from scratch)."""
        self._cube_filter.reset()
        self._cube_last = None

    def close(self) -> None:
        self._pifu = None


def export_volume_mesh(occupancy: Callable[[torch.Tensor], torch.Tensor],
                       color: Callable[[torch.Tensor], torch.Tensor] | None, path: Path,
                       resolutions: tuple[int, ...], cube: CubeMap | None,
                       device: torch.device | str = "cpu") -> Path:
    """Localise the field losslessly in the input camera's cube and write its 0.5 level set
    (marching cubes, vertex colours) to `path` (.ply, .obj, .glb: trimesh decides).

    cube: the offline field's cube; vertices then go to camera-space metres and, like the body
    export, to mesh viewers' axes (y up, z towards the viewer), so the two meshes line up.
    None (PIFu): vertices stay in cube units, with the same axis flip."""
    from engine.volume.localize import localize
    from engine.volume.mesh import grid_to_mesh

    grid, _ = localize(occupancy, resolutions, "lossless", device=device)
    mesh = grid_to_mesh(grid, 0.5, color)
    if len(mesh.faces) == 0:
        raise ValueError("nothing to export: the field has no surface in this frame")
    v = np.asarray(mesh.vertices, np.float64)
    if cube is not None:
        v = cube.centre + cube.half * v
    mesh.vertices = v * np.array([1.0, -1.0, -1.0])  # camera (y down, z forward) -> viewer axes
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    log.info("volume mesh: %d vertices, %d faces -> %s", len(mesh.vertices), len(mesh.faces), path)
    return path


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with `count` torch intra-op threads (None: unchanged), then restore."""
    if count is None or count == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def is_cut(raw: CubeMap, last: np.ndarray, jump: float = 0.5) -> bool:
    """True when this frame's cube is not a continuation of the steadied one (last: (4,)
    centre and half): its centre moved by more than `jump` of its half, or its size changed
    by more than that fraction."""
    moved = float(np.abs(raw.centre - last[:3]).max()) > jump * raw.half
    resized = abs(raw.half - float(last[3])) > jump * min(raw.half, float(last[3]))
    return moved or resized


def steady_cube(raw: CubeMap, filtered: np.ndarray) -> CubeMap:
    """The filtered cube (filtered: (4,) centre x, y, z and half, metres), grown where needed
    so that it still holds this frame's cube `raw` (and so the whole person)."""
    centre = np.asarray(filtered[:3], np.float64)
    half = max(float(filtered[3]), float(np.abs(raw.centre - centre).max()) + raw.half)
    return CubeMap(centre=centre, half=half)


def volume_result(views: list[RenderedView], yaws_deg: tuple[float, ...], stats: dict[str, Any],
                  backend: str) -> VolumeResult:
    """Stack the rendered views into a VolumeResult (uint8 BGR colour and normal images)."""
    per_view = [v.stats for v in views]
    stats = dict(stats)
    stats.update(
        queries=int(sum(s["queries"] for s in per_view)),
        queries_per_view=[int(s["queries"]) for s in per_view],
        visible_per_view=[int(s["visible"]) for s in per_view],
        ms_localize=float(sum(s["ms_localize"] for s in per_view)),
        ms_render=float(sum(s["ms_render"] for s in per_view)),
        ms_color_refine=float(sum(s.get("ms_color_refine", 0.0) for s in per_view)),
        resolutions=list(per_view[0]["resolutions"]) if per_view else [],
        mode=per_view[0]["mode"] if per_view else "",
    )
    return VolumeResult(
        yaw_deg=np.asarray(yaws_deg, np.float32),
        color=np.stack([to_bgr8(v.color) for v in views]),
        normal=np.stack([normal_to_bgr8(v.normal, v.mask) for v in views]),
        depth=np.stack([v.depth.astype(np.float32) for v in views]),
        stats=stats,
        backend=backend,
        silhouette=stack_silhouettes(views),
    )


__all__ = ["BACKENDS", "VolumeSettings", "VolumeStage", "export_volume_mesh", "torch_threads", "is_cut",
           "steady_cube", "volume_result"]
