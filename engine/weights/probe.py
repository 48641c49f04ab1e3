"""Does an installed model actually load? The check behind `weights verify` for files the
manifest publishes no sha256 for: a garbage file must not be called installed.

Each back-end's own loader is the judge (it checks keys and tensor shapes strictly), plus a
finiteness check of the arrays it returns: a file that loads but holds NaN would give NaN
meshes on every frame.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

def _non_finite(value: Any, name: str) -> str | None:
    arrays: list[tuple[str, Any]] = []
    if dataclasses.is_dataclass(value):
        arrays = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    for field_name, array in arrays:
        if isinstance(array, np.ndarray) and array.dtype.kind == "f" and not np.isfinite(array).all():
            return f"{name}: {field_name} holds NaN or infinite values"
    return None


def _tddfa(paths: dict[str, Path]) -> str | None:
    from engine.face.tddfa import load_regressor

    load_regressor(paths["checkpoint"], paths["param_stats"])
    return None


def _bfm(paths: dict[str, Path]) -> str | None:
    from engine.face.bfm import load_bfm

    return _non_finite(load_bfm(paths["bfm"], paths.get("tri")), "BFM")


def _hmr(paths: dict[str, Path]) -> str | None:
    from engine.body.hmr import load_hmr

    load_hmr(paths["checkpoint"], paths["mean_params"])
    return None


def _pointhmr(paths: dict[str, Path]) -> str | None:
    from engine.body.pointhmr import load_mesh_arrays, load_pointhmr
    from engine.body.pointhmr_backend import MESH_FILES

    mesh = load_mesh_arrays(*(paths[k] for k in MESH_FILES))
    if "checkpoint" in paths:
        load_pointhmr(paths["checkpoint"], mesh)
    return None


def _smpl(paths: dict[str, Path]) -> str | None:
    from engine.body.smpl_io import load_smpl

    return _non_finite(load_smpl(paths["model"]), "SMPL")


def _pifu(paths: dict[str, Path], colour: bool) -> str | None:
    from engine.volume.pifu import load_color_net, load_pifu

    if colour:
        load_color_net(paths["checkpoint"])
    else:
        load_pifu(paths["checkpoint"])
    return None


def _probe_for(name: str, backend: str) -> Callable[[dict[str, Path]], str | None] | None:
    if backend == "tddfa":
        return _tddfa
    if backend == "bfm":
        return _bfm
    if backend == "hmr":
        return _hmr
    if backend == "pointhmr":
        return _pointhmr
    if backend == "smpl":
        return _smpl
    if backend in ("pifu", "monoport"):
        colour = name.endswith("netc")
        return lambda paths: _pifu(paths, colour)
    return None


def probe_model(name: str, backend: str, paths: dict[str, Path]) -> str | None:
    """Why the installed files of model `name` are unusable, or None when they load with the
    expected keys, shapes and finite values. Unknown back-ends cannot be probed: None."""
    probe = _probe_for(name, backend)
    if probe is None:
        log.info("%s: no load check for back-end %r", name, backend)
        return None
    try:
        return probe(paths)
    except Exception as exc:  # unpickling a garbage file may raise anything: each is the answer
        log.debug("%s: load check failed", name, exc_info=True)
        text = str(exc).strip().splitlines()
        return f"does not load as a {backend} model ({type(exc).__name__}: {text[0] if text else ''})"[:300]
