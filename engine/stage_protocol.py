"""The Stage protocol: `process(frame, ctx) -> Result | None`.

A stage owns its models and its temporal state (tracking, filters). It is built once,
`reset()` when the source changes and `close()`d at shutdown. `ctx` maps the names of
earlier stages to this frame's results (face and body read "perception"; volume reads
"body" and "perception"). A stage returns None when it found nothing in this frame.

`requires` names the stages whose results `process()` reads from `ctx`; the pipeline runs
a stage as soon as those are done (stages that need the same ones run side by side). A
stage without it is taken to read every earlier stage.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from engine.frame import Frame

StageContext = Mapping[str, Any]


@runtime_checkable
class Result(Protocol):
    """A frozen dataclass of numpy arrays with a JSON view for results.jsonl."""

    def to_json(self) -> dict[str, Any]: ...


@runtime_checkable
class Stage(Protocol):
    name: str
    requires: tuple[str, ...]

    def process(self, frame: Frame, ctx: StageContext) -> Result | None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


def jsonable(value: Any, decimals: int = 3) -> Any:
    """Convert numpy arrays/scalars (possibly nested in dicts, lists, dataclasses) to JSON
    types, rounding floats to `decimals` so results.jsonl stays readable and small.
    NaN and infinities become None (JSON has no such numbers: bare `NaN` is invalid JSON)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float):
        return round(value, decimals) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            rounded = np.round(value.astype(np.float64), decimals)
            finite = np.isfinite(rounded)
            if finite.all():
                return rounded.tolist()
            return np.where(finite, rounded, None).tolist()
        return value.tolist()
    if isinstance(value, np.generic):
        return jsonable(value.item(), decimals)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), decimals) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, decimals) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, decimals) for v in value]
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def dumps_json(value: Any, indent: int | None = None) -> str:
    """One JSON text that is always valid: non-finite numbers become null; compact unless
    `indent` is given. The fast path is the plain encoder; only a value holding NaN/inf (or
    numpy types) takes the slow walk through `jsonable`."""
    import json

    separators = (",", ":") if indent is None else None
    try:
        return json.dumps(value, separators=separators, indent=indent, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(jsonable(value, decimals=6), separators=separators, indent=indent, allow_nan=False)


def non_finite_fields(result: Any) -> list[str]:
    """Names of a result's float array / float fields that hold NaN or inf (a model fed a
    degenerate file, a fit that diverged): such a result must not be shown or saved."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return []
    bad = []
    allowed = getattr(result, "NAN_ALLOWED", ())
    for f in dataclasses.fields(result):
        if f.name in allowed:
            continue
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if not np.isfinite(value).all():
                bad.append(f.name)
        elif isinstance(value, float) and not math.isfinite(value):
            # fit_rmse_px and similar scalars may be NaN by design ("not measured"): only
            # arrays (geometry, parameters) disqualify a result.
            continue
    return bad
