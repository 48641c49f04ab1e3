"""What crosses the network between `run --remote` and `holocap serve`: a versioned schema.

One message is a JSON header and the raw bytes of its arrays, nothing else:

    b"HCAP" | u32 header length | header (UTF-8 JSON) | array bytes, back to back

The header names the schema version, the message's plain values and, for every array,
its dtype, shape and byte range. Nothing is unpickled and no class is looked up by a name
the peer chose: results are rebuilt only as one of the `RESULT_TYPES` below, field by
field, so a message can make arrays and plain values and nothing else.

A request carries the frame (JPEG by default, PNG when `lossless`) and the results of
the stages the remote one reads from its context (`requires`); the reply carries the
stage's Result (or none) and the server's own time for it. In lossy mode the person mask
travels as an 8-bit PNG (1.2 MB of float32 at 640x480 becomes ~10 kB) and a mesh's vertices
as 16 bits per coordinate over their own range; lossless mode sends every array as it is,
so a remote run gives exactly a local run's results.
"""
from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

import cv2
import numpy as np

from engine.frame import Frame

SCHEMA_VERSION = 1
MAGIC = b"HCAP"
MAX_HEADER_BYTES = 1 << 20
ALLOWED_DTYPES = frozenset({"uint8", "uint16", "int32", "int64", "float16", "float32", "float64", "bool"})
MASK_FIELDS = frozenset({"segmentation"})  # float [0, 1] images, sent as 8-bit PNG when lossy
QUANTIZE_MIN_VALUES = 3000  # lossy mode: float point lists this large travel as 16-bit (see _quantizable)


class WireError(ValueError):
    """A message that is not a valid holocap message of this schema (the peer's fault)."""


def _result_types() -> dict[str, type]:
    # Imported here: the result modules are light (dataclasses of arrays), but the wire
    # module must not pull a stage's models in.
    from engine.body.result import BodyResult
    from engine.face.result import FaceResult
    from engine.perception.result import PerceptionResult
    from engine.volume.result import VolumeResult

    return {"perception": PerceptionResult, "face": FaceResult, "body": BodyResult, "volume": VolumeResult}


def pack(values: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """One message from plain JSON values and named arrays."""
    specs, chunks, offset = [], [], 0
    for name, array in arrays.items():
        a = np.ascontiguousarray(array)
        if a.dtype.name not in ALLOWED_DTYPES:
            raise WireError(f"array {name}: dtype {a.dtype} cannot be sent")
        specs.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape), "offset": offset,
                      "nbytes": a.nbytes})
        chunks.append(a.tobytes())
        offset += a.nbytes
    header = json.dumps({"v": SCHEMA_VERSION, "values": values, "arrays": specs},
                        separators=(",", ":"), allow_nan=True, default=_plain).encode()
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *chunks])


def _plain(value: Any) -> Any:
    """numpy scalars and small arrays inside plain values (a volume's stats) as JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be sent")


def unpack(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The values and arrays of one message; WireError if it is not one of ours."""
    if len(message) < 8 or message[:4] != MAGIC:
        raise WireError("not a holocap message")
    (n,) = struct.unpack("<I", message[4:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(message):
        raise WireError("message header is cut off or too large")
    try:
        header = json.loads(message[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"message header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("v") != SCHEMA_VERSION:
        raise WireError(f"schema version {header.get('v') if isinstance(header, dict) else '?'}; "
                        f"this holocap speaks {SCHEMA_VERSION} (update client and server together)")
    body = memoryview(message)[8 + n:]
    arrays = {}
    for spec in header.get("arrays", []):
        try:
            dtype = np.dtype(spec["dtype"]) if spec["dtype"] in ALLOWED_DTYPES else None
            shape, start, nbytes = tuple(int(s) for s in spec["shape"]), int(spec["offset"]), int(spec["nbytes"])
        except (KeyError, TypeError, ValueError):
            raise WireError("bad array description") from None
        if dtype is None or start < 0 or start + nbytes > len(body) or min(shape, default=1) < 0 \
                or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
            raise WireError(f"array {spec.get('name')!r}: bad dtype, shape or byte range")
        arrays[str(spec["name"])] = np.frombuffer(body[start:start + nbytes], dtype=dtype).reshape(shape).copy()
    values = header.get("values")
    return (values if isinstance(values, dict) else {}), arrays


def _result_fields(prefix: str, result: Any, lossy: bool, values: dict, arrays: dict,
                   cache: "ArrayCache | None" = None, have: frozenset[str] = frozenset()) -> None:
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        key = f"{prefix}.{f.name}"
        if isinstance(v, np.ndarray):
            cache_key = None if cache is None else cache.key(key, v)
            if cache_key is not None:
                values[key + "#cache"] = cache_key
                if cache_key in have:
                    continue  # the peer holds this very array (a mesh's triangles)
            if lossy and f.name in MASK_FIELDS and v.ndim == 2:
                ok, png = cv2.imencode(".png", np.clip(v * 255.0 + 0.5, 0, 255).astype(np.uint8))
                arrays[key + "#png"] = png.reshape(-1)
            elif lossy and _quantizable(v):
                q, lo, step = _quantize(v)
                arrays[key + "#q16"] = q
                values[key + "#q16"] = {"lo": lo, "step": step, "dtype": v.dtype.name}
            else:
                arrays[key] = v
        elif isinstance(v, tuple):
            values[key] = {"tuple": list(v)}
        else:
            values[key] = v


def _quantizable(v: np.ndarray) -> bool:
    """Large float point lists (a mesh's vertices): 16 bits per coordinate over their own
    range lose < 1/131070 of it (15 um over a 2 m body), and halve the reply."""
    return (v.dtype.kind == "f" and v.ndim == 2 and v.shape[1] in (2, 3) and v.size >= QUANTIZE_MIN_VALUES
            and bool(np.isfinite(v).all()))


def _quantize(v: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    lo = v.min(axis=0).astype(np.float64)
    step = np.maximum((v.max(axis=0) - lo) / 65535.0, 1e-12)
    q = np.rint((v - lo) / step).astype(np.uint16)
    return q, lo.tolist(), step.tolist()


def _dequantize(q: np.ndarray, spec: Any, key: str) -> np.ndarray:
    try:
        lo, step = np.asarray(spec["lo"], np.float64), np.asarray(spec["step"], np.float64)
        dtype = np.dtype(spec["dtype"]) if spec["dtype"] in ("float32", "float64") else None
    except (TypeError, KeyError, ValueError):
        dtype = None
    if dtype is None or q.dtype != np.uint16 or q.ndim != 2 or lo.shape != (q.shape[1],) or step.shape != lo.shape:
        raise WireError(f"{key}: bad quantised array")
    return (q * step + lo).astype(dtype)


def _rebuild(prefix: str, kind: str, values: dict, arrays: dict, held: "HeldArrays | None" = None) -> Any:
    cls = _result_types().get(kind)
    if cls is None:
        raise WireError(f"unknown result kind {kind!r}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}"
        cache_key = values.get(key + "#cache")
        sent = any(k in arrays for k in (key, key + "#png", key + "#q16"))
        if not sent and cache_key is not None:
            cached = None if held is None else held.get(str(cache_key))
            if cached is None:
                raise WireError(f"{key}: the peer sent the key of an array this side does not hold")
            kwargs[f.name] = cached
        elif key in arrays:
            kwargs[f.name] = arrays[key]
        elif key + "#q16" in arrays:
            kwargs[f.name] = _dequantize(arrays[key + "#q16"], values.get(key + "#q16"), key)
        elif key + "#png" in arrays:
            mask = cv2.imdecode(arrays[key + "#png"], cv2.IMREAD_UNCHANGED)
            if mask is None:
                raise WireError(f"{key}: the mask is not a PNG")
            kwargs[f.name] = mask.astype(np.float32) / 255.0
        elif key in values:
            v = values[key]
            kwargs[f.name] = tuple(v["tuple"]) if isinstance(v, dict) and set(v) == {"tuple"} else v
        if sent and cache_key is not None and held is not None and f.name in kwargs:
            held.put(str(cache_key), kwargs[f.name])  # the peer will send only the key next time
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise WireError(f"{kind} result: {exc}") from None


def encode_image(image: np.ndarray, lossless: bool, jpeg_quality: int) -> np.ndarray:
    ok, data = (cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1]) if lossless
                else cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]))
    if not ok:
        raise WireError("the frame could not be encoded")
    return data.reshape(-1)


@dataclass(frozen=True)
class StageRequest:
    """One frame for one remote stage. `reset`: the server forgets the session's temporal
    state first (the client ran frames locally in between, or its source changed)."""

    frame: Frame
    context: dict[str, Any] = field(default_factory=dict)
    reset: bool = False
    controls: dict[str, Any] = field(default_factory=dict)  # live settings: the volume's quality, yaws
    have: tuple[str, ...] = ()  # keys of the unchanging arrays the client holds (see ArrayCache)


def encode_request(request: StageRequest, lossless: bool = False, jpeg_quality: int = 90,
                   pixels: bool = True, cache: "ArrayCache | None" = None,
                   held_by_server: frozenset[str] = frozenset()) -> bytes:
    """`pixels`: send the image and the person mask; without, the server's stage gets an
    all-zero stand-in of the frame's size (for stages that read only landmarks and sizes).
    `cache`/`held_by_server`: as for replies, the other way (the body's triangles in a
    volume request): arrays the server's session holds go as their key alone."""
    f = request.frame
    values: dict[str, Any] = {"frame": {"index": f.index, "t_capture": f.t_capture, "t_media": f.t_media,
                                        "source_id": f.source_id, "name": f.name, "shape": list(f.image.shape)},
                              "reset": request.reset, "controls": request.controls,
                              "have": list(request.have), "context": {}}
    arrays: dict[str, np.ndarray] = {"frame.image": encode_image(f.image, lossless, jpeg_quality)} if pixels else {}
    kinds = {cls: kind for kind, cls in _result_types().items()}
    for name, result in request.context.items():
        if result is None:
            values["context"][name] = None
            continue
        kind = kinds.get(type(result))
        if kind is None:
            raise WireError(f"context {name}: {type(result).__name__} cannot be sent")
        values["context"][name] = kind
        if not pixels and isinstance(getattr(result, "segmentation", None), np.ndarray):
            result = dataclasses.replace(result, segmentation=None)
        _result_fields(f"ctx.{name}", result, not lossless, values, arrays, cache, held_by_server)
    return pack(values, arrays)


def decode_request(message: bytes, held: "HeldArrays | None" = None) -> StageRequest:
    values, arrays = unpack(message)
    meta = values.get("frame")
    if not isinstance(meta, dict):
        raise WireError("request has no frame")
    shape = meta.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and shape[2] == 3
            and all(isinstance(n, int) and 0 < n <= 16384 for n in shape[:2])):
        raise WireError(f"frame shape {shape!r}: expected [height, width, 3]")
    if "frame.image" in arrays:
        image = cv2.imdecode(arrays["frame.image"], cv2.IMREAD_COLOR)
        if image is None or list(image.shape) != shape:
            raise WireError("the frame is not a readable image of the stated size")
    else:  # the stage reads no pixels: a zero-stride stand-in of the right size, no memory
        image = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), tuple(shape))
    frame = Frame(image=image, index=int(meta.get("index", 0)), t_capture=float(meta.get("t_capture", 0.0)),
                  source_id=str(meta.get("source_id", "")), name=str(meta.get("name", "")),
                  t_media=None if meta.get("t_media") is None else float(meta["t_media"]))
    context = {}
    for name, kind in dict(values.get("context") or {}).items():
        context[str(name)] = None if kind is None else _rebuild(f"ctx.{name}", str(kind), values, arrays, held)
    controls = values.get("controls")
    have = values.get("have")
    return StageRequest(frame=frame, context=context, reset=bool(values.get("reset", False)),
                        controls=controls if isinstance(controls, dict) else {},
                        have=tuple(str(k) for k in have) if isinstance(have, list) else ())


def encode_reply(kind: str, result: Any, stage_ms: float, lossless: bool = True,
                 attrs: Mapping[str, Any] | None = None, cache: "ArrayCache | None" = None,
                 have: frozenset[str] = frozenset()) -> bytes:
    """`attrs`: what the client shows of the stage besides its result (the volume's level).
    `cache`/`have`: arrays the stage hands back unchanged (triangles) get a key; those the
    client says it holds (`have`) are sent as the key alone."""
    values: dict[str, Any] = {"kind": kind if result is not None else None, "stage_ms": float(stage_ms),
                              "attrs": dict(attrs or {})}
    arrays: dict[str, np.ndarray] = {}
    if result is not None:
        _result_fields("result", result, not lossless, values, arrays, cache, have)
    return pack(values, arrays)


@dataclass(frozen=True)
class StageReply:
    result: Any  # the stage's Result, or None when it found nothing
    stage_ms: float  # the server's own time in the stage
    attrs: dict[str, Any] = field(default_factory=dict)


def decode_reply(message: bytes, held: "HeldArrays | None" = None) -> StageReply:
    values, arrays = unpack(message)
    kind = values.get("kind")
    result = None if kind is None else _rebuild("result", str(kind), values, arrays, held)
    attrs = values.get("attrs")
    return StageReply(result, float(values.get("stage_ms", float("nan"))), attrs if isinstance(attrs, dict) else {})


class ArrayCache:
    """The sender's side: keys for the arrays sent unchanged message after message (the same
    object: a mesh's triangles, 100-300 kB each time). An array gets a key the second time it
    is seen; the receiver keeps keyed arrays (HeldArrays) and the sender then sends the key
    alone. Replies: the client lists what it holds in `have`. Requests: the client counts
    what the server's session holds since it was opened."""

    def __init__(self, prefix: str) -> None:
        self._prefix, self._last, self._given, self._n = prefix, {}, {}, 0

    def key(self, name: str, array: np.ndarray) -> str | None:
        last = self._last.get(name)
        if last is not None and last[0] is array:
            self._given[name] = last[1]
            return last[1]
        self._n += 1
        self._last[name] = (array, f"{self._prefix}:{self._n}")
        self._given.pop(name, None)
        return None

    def keys(self) -> set[str]:
        """The keys the last messages carried: once they went through, the receiver holds them."""
        return set(self._given.values())


class HeldArrays:
    """The receiver's side: the keyed arrays received, the few most recent ones."""

    def __init__(self, most: int = 8) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._most = most

    def put(self, key: str, array: np.ndarray) -> None:
        self._arrays.pop(key, None)
        self._arrays[key] = array
        while len(self._arrays) > self._most:
            self._arrays.pop(next(iter(self._arrays)))

    def get(self, key: str) -> np.ndarray | None:
        return self._arrays.get(key)

    def keys(self) -> tuple[str, ...]:
        return tuple(self._arrays)
