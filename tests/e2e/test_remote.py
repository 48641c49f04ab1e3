"""`holocap serve` with `run --remote` on a local one-CPU Ray: the same results as a local
run, every frame when the server dies mid-run, back to the server once it returns, and the
token and bind rules. Each test starts its own server (a Ray cluster, ~10 s)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.frame import Frame
from engine.remote.process import ServerProcess, health

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-test-token"
FRAMES = 40


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(tmp_path: Path, stages=("face", "body"), token: str | None = TOKEN, port: int | None = None) -> ServerProcess:
    return ServerProcess(stages, port or _port(), token=token, num_cpus=1, log_path=tmp_path / "serve.log")


def _cli(*args: str, token: str | None = TOKEN) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if token:
        env["HOLOCAP_TOKEN"] = token
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _frames(path: Path, n: int) -> list[Frame]:
    from engine.sources.video import VideoSource

    source = VideoSource(path)
    source.open()
    try:
        frames = [source.read() for _ in range(n)]
    finally:
        source.close()
    assert all(f is not None for f in frames)
    return frames


def _arrays(result) -> dict[str, np.ndarray]:
    import dataclasses

    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), np.ndarray)}


def test_remote_run_equals_local_run(shared_file, tmp_path):
    """Face and body through the server (lossless frames) vs the same stages here: every
    array within 1e-4, every frame, in order. With the options of a headless run: mesh
    colours are sampled on a helper thread at a wall-clock rate, so they are not part of a
    run's reproducible output, here or remote."""
    from engine.remote.client import RemoteOptions, RemoteStage
    from engine.remote.session import SessionSpec
    from engine.stage_factory import BUILDERS, StageOptions

    frames = _frames(shared_file("media/talking_head.mp4"), FRAMES)
    options = StageOptions(device="cpu", mesh_colours=False)
    perception = BUILDERS["perception"](options)
    contexts = [{"perception": perception.process(f, {})} for f in frames]
    perception.close()
    with _server(tmp_path) as server:
        remote = RemoteOptions(url=server.url, token=TOKEN, timeout_s=60.0, lossless=True)
        for name in ("face", "body"):
            local = BUILDERS[name](options)
            expected = [local.process(f, c) for f, c in zip(frames, contexts)]
            local.reset()
            stage = RemoteStage(local, remote, SessionSpec.from_options(options, lossless=True))
            try:
                assert stage.where == "remote"
                got = [stage.process(f, c) for f, c in zip(frames, contexts)]
            finally:
                stage.close()
            assert stage.frames_remote == FRAMES and not stage.local_frames
            assert sum(r is not None for r in expected) >= FRAMES - 2
            for i, (a, b) in enumerate(zip(expected, got)):
                assert (a is None) == (b is None), (name, i)
                if a is None:
                    continue
                assert type(a) is type(b)
                for key, value in _arrays(a).items():
                    other = _arrays(b)[key]
                    assert value.shape == other.shape and value.dtype == other.dtype, (name, i, key)
                    if value.dtype.kind == "f":
                        assert np.allclose(value, other, atol=1e-4, rtol=0, equal_nan=True), (name, i, key)
                    else:
                        assert np.array_equal(value, other), (name, i, key)


def test_token_is_checked_on_every_request(tmp_path):
    from engine.remote.client import RemoteOptions, RemoteUnavailable, StageClient
    from engine.remote.session import SessionSpec
    from engine.stage_factory import StageOptions

    with _server(tmp_path, stages=("body",)) as server:
        assert health(server.url, "body") == 401
        assert health(server.url, "body", token="wrong") == 403
        assert health(server.url, "body", token=TOKEN) == 200
        spec = SessionSpec.from_options(StageOptions(), lossless=False)
        for token in (None, "wrong"):
            client = StageClient(RemoteOptions(url=server.url, token=token, timeout_s=30.0), "body", spec)
            with pytest.raises(RemoteUnavailable, match="refused the token"):
                client.open()
            client.close()
    assert TOKEN not in (tmp_path / "serve.log").read_text()  # never logged


def test_non_loopback_bind_needs_a_token():
    proc = _cli("serve", "--host", "0.0.0.0", "--port", str(_port()), token=None)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("holocap:")]
    assert len(lines) == 1 and "--token" in lines[0] and "Traceback" not in err


def test_server_killed_mid_run_every_frame_still_done(shared_file, tmp_path):
    """`run --remote`: the server is killed (SIGKILL, its Ray included) after some frames;
    the run finishes every frame, in order, and summary.json counts both kinds."""
    out = tmp_path / "out"
    with _server(tmp_path) as server:
        run = _cli("run", "--headless", "--source", str(shared_file("media/talking_head.mp4")),
                   "--stages", "perception,face,body", "--out", str(out), "--no-progress",
                   "--remote", server.url, "--remote-timeout", "5")
        results = out / "results.jsonl"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None:
            if results.exists() and len(results.read_text().splitlines()) >= 30:
                break
            time.sleep(0.2)
        os.killpg(server.proc.pid, signal.SIGKILL)
        _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(169))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 169
    assert summary["frames_remote"] >= 30 and summary["frames_local"] >= 1
    assert summary["frames_remote"] + summary["frames_local"] == 169
    assert summary["remote"]["body"]["fallbacks"] >= 1
    with_body = sum(r["body"] is not None for r in records)
    assert with_body >= 160
    assert "stopped answering" in err


def test_client_goes_back_to_the_server_when_it_returns(shared_file, tmp_path):
    from engine.remote.client import RemoteOptions, RemoteStage
    from engine.remote.session import SessionSpec
    from engine.stage_factory import BUILDERS, StageOptions

    frames = _frames(shared_file("media/talking_head.mp4"), 6)
    options = StageOptions(device="cpu")
    perception = BUILDERS["perception"](options)
    contexts = [{"perception": perception.process(f, {})} for f in frames]
    perception.close()
    port = _port()
    remote = RemoteOptions(url=f"http://127.0.0.1:{port}", token=TOKEN, timeout_s=30.0, retry_s=0.5)
    stage = RemoteStage(BUILDERS["body"](options), remote, SessionSpec.from_options(options, False))
    try:
        assert stage.where == "local"  # nothing listens yet: frames run here, none lost
        assert stage.process(frames[0], contexts[0]) is not None
        with _server(tmp_path, stages=("body",), port=port):
            deadline = time.monotonic() + 120
            while stage.where != "remote" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert stage.where == "remote"
            for f, c in zip(frames[1:], contexts[1:]):
                if f.index == 3:
                    stage.request_export(tmp_path / "meshes")  # the app's "Export meshes"
                assert stage.process(f, c) is not None
        assert stage.frames_remote == 5 and stage.local_frames == {0}
        assert [p.name for p in (tmp_path / "meshes").glob("*.ply")] == ["body_000003_anny.ply"]
        assert stage.round_trip_ms is not None
    finally:
        stage.close()


def test_volume_reads_the_frame_and_the_body_through_the_server(shared_file, tmp_path):
    """A stage that reads pixels (the volume: the frame, the mask and the body fit travel):
    with lossless frames, the same views as the volume stage run here."""
    from engine.remote.client import RemoteOptions, RemoteStage
    from engine.remote.session import SessionSpec
    from engine.stage_factory import BUILDERS, StageOptions

    frames = _frames(shared_file("media/talking_head.mp4"), 3)
    options = StageOptions(device="cpu", mesh_colours=False, volume_quality="low")
    perception, body = BUILDERS["perception"](options), BUILDERS["body"](options)
    contexts = []
    for f in frames:
        p = perception.process(f, {})
        contexts.append({"perception": p, "body": body.process(f, {"perception": p})})
    perception.close()
    body.close()
    local = BUILDERS["volume"](options)
    expected = [local.process(f, c) for f, c in zip(frames, contexts)]
    local.reset()
    with _server(tmp_path, stages=("volume",)) as server:
        remote = RemoteOptions(url=server.url, token=TOKEN, timeout_s=120.0, lossless=True)
        stage = RemoteStage(local, remote, SessionSpec.from_options(options, lossless=True))
        try:
            got = [stage.process(f, c) for f, c in zip(frames, contexts)]
        finally:
            stage.close()
    assert stage.frames_remote == 3
    for a, b in zip(expected, got):
        assert a is not None and b is not None and a.color.shape == b.color.shape
        assert np.array_equal(a.yaw_deg, b.yaw_deg)
        assert np.mean(np.abs(a.color.astype(int) - b.color.astype(int))) < 0.5
        assert np.allclose(a.depth, b.depth, atol=1e-4, equal_nan=True)
