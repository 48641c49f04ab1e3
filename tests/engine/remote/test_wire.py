"""The remote message format: results survive the trip exactly, and nothing but a
well-formed message of this schema is accepted."""
from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from engine.body.result import BodyResult
from engine.frame import Frame
from engine.perception.result import PerceptionResult
from engine.remote import wire
from engine.remote.session import SessionSpec, decode_session_id
from engine.stage_factory import StageOptions
from engine.volume.result import VolumeResult


def _perception(rng: np.random.Generator) -> PerceptionResult:
    return PerceptionResult(image_size=(48, 64), face_landmarks=rng.random((478, 3), np.float32),
                            pose_landmarks=rng.random((33, 3), np.float32),
                            pose_visibility=rng.random(33, np.float32),
                            segmentation=rng.random((48, 64), np.float32))


def _frame(rng: np.random.Generator) -> Frame:
    return Frame(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), 7, 12.5, "clip.mp4", "", t_media=0.28)


def _body(rng: np.random.Generator, faces: np.ndarray) -> BodyResult:
    kwargs = {}
    for f in dataclasses.fields(BodyResult):
        if f.name == "faces":
            kwargs[f.name] = faces
        elif f.name in ("camera_focal_px", "fit_rmse_px"):
            kwargs[f.name] = float("nan") if f.name == "fit_rmse_px" else 600.0
        elif f.name == "backend":
            kwargs[f.name] = "anny"
        elif f.name == "keypoint_visible":
            kwargs[f.name] = rng.random(17) > 0.5
        elif f.name == "vertex_colours":
            kwargs[f.name] = None
        else:
            kwargs[f.name] = rng.random((5, 3), np.float32)
    return BodyResult(**kwargs)


def test_lossless_request_round_trip_is_exact():
    rng = np.random.default_rng(0)
    frame, perception = _frame(rng), _perception(rng)
    message = wire.encode_request(wire.StageRequest(frame, {"perception": perception, "body": None}, True,
                                                    {"quality": "low"}), lossless=True)
    got = wire.decode_request(message)
    assert np.array_equal(got.frame.image, frame.image)
    assert (got.frame.index, got.frame.t_capture, got.frame.t_media, got.frame.source_id) == (7, 12.5, 0.28, "clip.mp4")
    assert got.reset and got.controls == {"quality": "low"} and got.context["body"] is None
    p = got.context["perception"]
    assert p.image_size == (48, 64) and p.people_boxes is None
    for name in ("face_landmarks", "pose_landmarks", "pose_visibility", "segmentation"):
        assert np.array_equal(getattr(p, name), getattr(perception, name)), name


def test_request_without_pixels_carries_sizes_and_landmarks_only():
    """For stages that read no pixels (the offline fits): no image, no mask on the wire; the
    server's stage sees a zero stand-in of the frame's size."""
    rng = np.random.default_rng(3)
    frame, perception = _frame(rng), _perception(rng)
    with_pixels = wire.encode_request(wire.StageRequest(frame, {"perception": perception}), pixels=True)
    message = wire.encode_request(wire.StageRequest(frame, {"perception": perception}), pixels=False)
    assert len(message) < len(with_pixels) - perception.segmentation.size // 4
    got = wire.decode_request(message)
    assert got.frame.image.shape == frame.image.shape and not got.frame.image.any()
    assert got.frame.image.strides == (0, 0, 0)  # no memory behind it
    assert got.context["perception"].segmentation is None
    assert np.array_equal(got.context["perception"].face_landmarks, perception.face_landmarks)


def test_lossy_request_sends_the_mask_as_8_bit():
    rng = np.random.default_rng(1)
    perception = _perception(rng)
    lossless = wire.encode_request(wire.StageRequest(_frame(rng), {"perception": perception}), lossless=True)
    lossy = wire.encode_request(wire.StageRequest(_frame(rng), {"perception": perception}), lossless=False)
    got = wire.decode_request(lossy).context["perception"]
    assert np.abs(got.segmentation - perception.segmentation).max() <= 0.5 / 255 + 1e-6
    assert got.segmentation.dtype == np.float32
    assert len(lossy) < len(lossless)


def test_reply_round_trip_and_unchanging_arrays_are_sent_once():
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 5, (2000, 3)).astype(np.int32)
    cache, held = wire.ArrayCache("t"), wire.HeldArrays()
    sizes = []
    for i in range(4):
        body = _body(rng, faces)
        message = wire.encode_reply("body", body, 3.5, attrs={"quality_level": None}, cache=cache,
                                    have=frozenset(held.keys()))
        sizes.append(len(message))
        reply = wire.decode_reply(message, held)
        assert reply.stage_ms == 3.5 and reply.attrs == {"quality_level": None}
        for f in dataclasses.fields(BodyResult):
            a, b = getattr(reply.result, f.name), getattr(body, f.name)
            if isinstance(b, np.ndarray):
                assert np.array_equal(a, b), f.name
        assert np.isnan(reply.result.fit_rmse_px)
    assert sizes[3] < sizes[0] - faces.nbytes + 1000  # by the third reply the triangles stay home
    # A client that lost its held arrays (a new connection to a restarted server) is told so.
    message = wire.encode_reply("body", _body(rng, faces), 1.0, cache=cache, have=frozenset(held.keys()))
    with pytest.raises(wire.WireError, match="does not hold"):
        wire.decode_reply(message, wire.HeldArrays())


def test_volume_reply_keeps_nan_depth_and_stats():
    result = VolumeResult(yaw_deg=np.zeros(1, np.float32), color=np.zeros((1, 4, 4, 3), np.uint8),
                          normal=np.zeros((1, 4, 4, 3), np.uint8), depth=np.full((1, 4, 4), np.nan, np.float32),
                          stats={"queries": np.int64(12), "ms": 3.25, "level": "low"}, backend="field")
    got = wire.decode_reply(wire.encode_reply("volume", result, 1.0)).result
    assert np.isnan(got.depth).all() and got.stats == {"queries": 12, "ms": 3.25, "level": "low"}


@pytest.mark.parametrize("message, words", [
    (b"", "not a holocap message"),
    (b"HCAP" + struct.pack("<I", 1 << 30), "too large"),
    (b"HCAP" + struct.pack("<I", 2) + b"{]", "not JSON"),
    (wire.pack({}, {})[:8] + b'{"v":99}'[:0], "cut off"),
])
def test_malformed_messages_are_refused(message, words):
    with pytest.raises(wire.WireError, match=words):
        wire.unpack(message)


def test_other_schema_versions_and_bad_arrays_are_refused():
    header = b'{"v":2,"values":{},"arrays":[]}'
    with pytest.raises(wire.WireError, match="schema version 2"):
        wire.unpack(b"HCAP" + struct.pack("<I", len(header)) + header)
    header = b'{"v":1,"values":{},"arrays":[{"name":"a","dtype":"object","shape":[1],"offset":0,"nbytes":8}]}'
    with pytest.raises(wire.WireError, match="bad dtype"):
        wire.unpack(b"HCAP" + struct.pack("<I", len(header)) + header + b"\0" * 8)
    header = b'{"v":1,"values":{},"arrays":[{"name":"a","dtype":"float32","shape":[4],"offset":0,"nbytes":16}]}'
    with pytest.raises(wire.WireError, match="byte range"):
        wire.unpack(b"HCAP" + struct.pack("<I", len(header)) + header + b"\0" * 8)
    with pytest.raises(wire.WireError, match="unknown result kind"):
        wire.decode_reply(wire.pack({"kind": "os.system"}, {}))


def test_session_id_carries_only_plain_whitelisted_options():
    spec = SessionSpec.from_options(StageOptions(face_backend="anny", hfov_deg=70.0, device="cuda"), lossless=True)
    back = decode_session_id(spec.session_id())
    assert back.lossless and back.options["face_backend"] == "anny" and back.options["hfov_deg"] == 70.0
    assert "device" not in back.options  # the server's own --device decides
    assert back.stage_options("cpu").device == "cpu"
    import base64
    import json

    forged = "ab." + base64.urlsafe_b64encode(json.dumps({"options": {"export_dir": "/etc"}}).encode()).decode()
    with pytest.raises(wire.WireError, match="not accepted"):
        decode_session_id(forged)
    wrong = "ab." + base64.urlsafe_b64encode(json.dumps({"options": {"hfov_deg": "wide"}}).encode()).decode()
    with pytest.raises(wire.WireError, match="wrong type"):
        decode_session_id(wrong)
    with pytest.raises(wire.WireError):
        decode_session_id("")


def test_lossy_reply_sends_vertices_in_16_bits_within_a_65535th_of_their_range():
    rng = np.random.default_rng(4)
    faces = rng.integers(0, 5, (100, 3)).astype(np.int32)
    body = dataclasses.replace(_body(rng, faces), vertices=(rng.random((14000, 3)) * [0.6, 1.8, 0.4] + [0, 0, 2.5]).astype(np.float32))
    exact = wire.encode_reply("body", body, 1.0, lossless=True)
    lossy = wire.encode_reply("body", body, 1.0, lossless=False)
    assert len(lossy) < len(exact) - body.vertices.nbytes // 3
    got = wire.decode_reply(lossy).result.vertices
    assert got.dtype == np.float32 and got.shape == body.vertices.shape
    assert np.abs(got - body.vertices).max() <= 1.8 / 65535 / 2 + 1e-6  # ~14 um over a 1.8 m body
    nan = dataclasses.replace(body, vertices=np.where(body.vertices > 2.8, np.nan, body.vertices).astype(np.float32))
    assert np.array_equal(wire.decode_reply(wire.encode_reply("body", nan, 1.0, lossless=False)).result.vertices,
                          nan.vertices, equal_nan=True)  # non-finite values travel exactly


def test_request_context_arrays_that_do_not_change_go_once_per_session():
    """The body's triangles in every volume request: sent in full until the server's session
    holds them, then as their key; a session without them (a restarted server) refuses."""
    rng = np.random.default_rng(5)
    faces = rng.integers(0, 5, (20000, 3)).astype(np.int32)
    sending, server_holds, held = wire.ArrayCache("c"), frozenset(), wire.HeldArrays()
    sizes = []
    for i in range(4):
        body = _body(rng, faces)
        message = wire.encode_request(wire.StageRequest(_frame(rng), {"body": body}), lossless=True,
                                      cache=sending, held_by_server=server_holds)
        sizes.append(len(message))
        got = wire.decode_request(message, held).context["body"]
        assert np.array_equal(got.faces, faces) and np.array_equal(got.vertices, body.vertices)
        server_holds = frozenset(sending.keys())  # the reply came back: the session holds them
    assert sizes[3] < sizes[0] - faces.nbytes + 1000
    with pytest.raises(wire.WireError, match="does not hold"):
        wire.decode_request(message, wire.HeldArrays())
