"""`holocap serve`: the torch-heavy stages as a Ray Serve application, one deployment each.

    client --HTTP--> Serve proxy (host:port) --> /face, /body, /volume deployments
                                                  (replicas, GPU when --device cuda)

Every stage keeps temporal state (trackers, filters), so a replica holds one stage per
client *session*, built with the options the client runs its own copy with (then a
remote result equals a local one). Sessions are Ray Serve multiplexed models: the session
id rides in the `serve_multiplexed_model_id` header, Serve routes a session's requests to
the replica that holds it, and each replica keeps its few most recent sessions. Frames of
one session are processed one at a time, in arrival order (a per-session lock): a stage's
state is a sequence, so requests are not batched (`@serve.batch` would mix sessions'
frames into one call of a stateful stage).

Safety: the token (if any) is checked on every request in constant time and never logged;
a request's size is bounded before its body is read; wire messages are parsed by
engine.remote.wire (no pickle). Binding anything but loopback requires a token.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ray import serve

from engine.remote import wire
from engine.remote.errors import ServeError
from engine.remote.session import SessionSpec, decode_session_id

log = logging.getLogger(__name__)

SERVED_STAGES = ("face", "body", "volume")
MAX_REQUEST_BYTES = 32 << 20  # a 4K PNG frame and a float32 mask fit; anything larger is refused
SESSIONS_PER_REPLICA = 4
# "stage": the stage raised on this frame (the client counts it like a local failure);
# "build": the session's stage cannot be built here (the client stays local, retries slowly);
# "request": the request was malformed.
ERROR_HEADER = "x-holocap-error"


@dataclass(frozen=True)
class ServeOptions:
    stages: tuple[str, ...] = SERVED_STAGES
    device: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 8000
    replicas: int | str = 1  # N, or "auto" (Serve's autoscaling between 1 and the cluster's size)
    token: str | None = None
    address: str | None = None  # join this Ray cluster instead of starting one
    num_cpus: int | None = None  # the local cluster's size (None: every core)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_options(options: ServeOptions) -> None:
    unknown = [s for s in options.stages if s not in SERVED_STAGES]
    if unknown or not options.stages:
        raise ServeError(f"--stages: {', '.join(unknown) or 'none given'}; the server runs "
                         f"{', '.join(SERVED_STAGES)} (perception stays with the camera)")
    if not is_loopback(options.host) and not options.token:
        raise ServeError(f"--host {options.host} is reachable from other machines: give --token TOKEN "
                         "(and put TLS in front, see the README), or bind 127.0.0.1")
    if not 0 < options.port < 65536:
        raise ServeError(f"--port {options.port}: not a TCP port")
    if options.replicas != "auto" and (not isinstance(options.replicas, int) or options.replicas < 1):
        raise ServeError(f"--replicas {options.replicas}: a number ≥ 1 or auto")


def token_status(expected: str | None, authorization: str | None) -> int | None:
    """None when the request may go on, else the HTTP status: 401 no token, 403 a wrong one.
    compare_digest takes the same time wherever the strings differ."""
    if not expected:
        return None
    if not authorization or not authorization.startswith("Bearer "):
        return 401
    given = authorization[len("Bearer "):].encode()
    return None if hmac.compare_digest(given, expected.encode()) else 403


class _Session:
    """One client's stage on this replica, with the lock that keeps its frames in order."""

    def __init__(self, spec: SessionSpec, stage_name: str, device: str) -> None:
        from engine.stage_factory import BUILDERS

        self.spec = spec
        self.stage = BUILDERS[stage_name](spec.stage_options(device))
        self.lock = asyncio.Lock()
        self.controls: dict[str, Any] = {}
        self.arrays = wire.ArrayCache(secrets.token_hex(4))  # unique per session instance
        self.held = wire.HeldArrays()  # unchanging arrays of the client's requests (the body's triangles)

    def apply_controls(self, controls: dict[str, Any]) -> None:
        """Live controls the client changed (the volume's quality and view) since the last frame."""
        if controls == self.controls:
            return
        stage = self.stage
        if "quality" in controls and hasattr(stage, "set_quality"):
            stage.set_quality(str(controls["quality"]), controls.get("target_fps"))
        if "yaws" in controls and hasattr(stage, "set_yaws"):
            stage.set_yaws(tuple(float(y) for y in controls["yaws"]))
        self.controls = dict(controls)

    def __del__(self) -> None:  # Serve calls it on eviction from the replica's cache; GC may again
        stage, self.stage = getattr(self, "stage", None), None
        if stage is None:
            return
        try:
            stage.close()
        except Exception as exc:  # closing must never take the replica down
            log.warning("closing an evicted session's stage: %s", exc)


class StageDeployment:
    """A Ray Serve deployment serving one stage over HTTP (`serve.deployment` is applied in
    `deploy`, with the replica and resource options the command line asked for).

    POST /<stage>/open   prepare the session (loads the models; the client waits longer)
    POST /<stage>        one frame -> the stage's Result (wire format)
    GET  /<stage>/health 200 and the schema version, for the client's reconnect probe
    """

    def __init__(self, stage_name: str, device: str, token: str | None) -> None:
        import torch

        self.stage_name, self.device, self._token = stage_name, device, token
        # A replica is one worker among others on the node: one intra-op thread per replica
        # stops them fighting over cores (Ray sets OMP threads from num_cpus, torch not always).
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))

    @serve.multiplexed(max_num_models_per_replica=SESSIONS_PER_REPLICA)
    async def _session(self, session_id: str) -> _Session:
        spec = decode_session_id(session_id)  # WireError for an id that is not one of ours
        log.info("%s: new session %s", self.stage_name, spec.short_id)
        # Building loads models (seconds): off the event loop, so health checks still answer.
        return await asyncio.get_running_loop().run_in_executor(None, _Session, spec, self.stage_name, self.device)

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        status = token_status(self._token, request.headers.get("authorization"))
        if status is not None:
            return JSONResponse({"error": "missing token" if status == 401 else "wrong token"}, status_code=status)
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/health"):
            return JSONResponse({"stage": self.stage_name, "schema": wire.SCHEMA_VERSION})
        if request.method != "POST":
            return JSONResponse({"error": "POST a frame, or GET …/health"}, status_code=405)
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return JSONResponse({"error": "send Content-Length"}, status_code=411)
        if int(length) > MAX_REQUEST_BYTES:
            return JSONResponse({"error": f"a request is at most {MAX_REQUEST_BYTES} bytes"}, status_code=413)
        session_id = serve.get_multiplexed_model_id()
        try:
            session = await self._session(session_id)
        except wire.WireError as exc:
            return JSONResponse({"error": f"session: {exc}"}, status_code=400, headers={ERROR_HEADER: "request"})
        except Exception as exc:  # the stage could not be built here (weights missing, no GPU memory…)
            log.error("%s: cannot build the stage for a session: %s", self.stage_name, exc, exc_info=True)
            return JSONResponse({"error": f"the server cannot build the {self.stage_name} stage: {exc}"},
                                status_code=500, headers={ERROR_HEADER: "build"})
        if path.endswith("/open"):
            return JSONResponse({"stage": self.stage_name, "session": session.spec.short_id,
                                 "reads_pixels": bool(getattr(session.stage, "reads_pixels", True))})
        body = await request.body()
        if len(body) > MAX_REQUEST_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        try:
            stage_request = wire.decode_request(body, session.held)
        except wire.WireError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers={ERROR_HEADER: "request"})
        async with session.lock:
            return await asyncio.get_running_loop().run_in_executor(None, self._process, session, stage_request)

    def _process(self, session: _Session, request: wire.StageRequest) -> Any:
        from starlette.responses import JSONResponse, Response

        if request.reset:
            session.stage.reset()
        session.apply_controls(request.controls)
        t0 = time.perf_counter()
        try:
            result = session.stage.process(request.frame, request.context)
        except Exception as exc:  # the stage's own failure: the client counts it like a local one
            log.warning("%s raised on frame %d: %s", self.stage_name, request.frame.index, exc, exc_info=True)
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500,
                                headers={ERROR_HEADER: "stage"})
        stage_ms = (time.perf_counter() - t0) * 1000.0
        attrs = {"quality_level": getattr(session.stage, "quality_level", None)}
        reply = wire.encode_reply(self.stage_name, result, stage_ms, lossless=session.spec.lossless, attrs=attrs,
                                  cache=session.arrays, have=frozenset(request.have))
        return Response(reply, media_type="application/octet-stream")


def check_port_free(host: str, port: int) -> None:
    """ServeError when host:port cannot be bound (in use, or not this machine's address):
    found before Ray starts, instead of as a Ray actor's traceback."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                             "(another server there? choose --port)") from None


def deploy(options: ServeOptions) -> list[str]:
    """Start (or join) Ray, start Serve on host:port and deploy one application per stage;
    returns the stages' URLs. Raises ServeError with a one-line reason (the caller shuts
    Ray down again with `shutdown()`)."""
    check_options(options)
    check_port_free(options.host, options.port)
    try:
        return _deploy(options)
    except ServeError:
        raise
    except Exception as exc:  # Ray's own failures arrive as long remote tracebacks: one line
        log.debug("deploying failed", exc_info=True)
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ServeError(f"Ray Serve could not start: {first}") from None


def _deploy(options: ServeOptions) -> list[str]:
    import ray
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PYTHONPATH": repo, "OPENBLAS_NUM_THREADS": "1"}
    # Ray would otherwise try to send usage statistics home; a GPU box need not reach out.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=options.address, num_cpus=None if options.address else options.num_cpus,
             include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
             runtime_env={"env_vars": env}, ignore_reinit_error=True)
    resources = ray.cluster_resources()
    share = 1.0 / len(options.stages)
    actor: dict[str, Any] = {"num_cpus": min(1.0, resources.get("CPU", 1.0) * share)}
    if options.device.startswith("cuda"):
        gpus = resources.get("GPU", 0.0)
        if gpus <= 0:
            raise ServeError("--device cuda: the Ray cluster has no GPU (ray.cluster_resources() lists none)")
        actor["num_gpus"] = min(1.0, gpus * share)
    scaling: dict[str, Any]
    if options.replicas == "auto":
        most = max(1, int(resources.get("GPU" if "num_gpus" in actor else "CPU", 1) / share))
        scaling = {"autoscaling_config": {"min_replicas": 1, "max_replicas": most,
                                          "target_ongoing_requests": 2}}
    else:
        scaling = {"num_replicas": int(options.replicas)}
    serve.start(http_options={"host": options.host, "port": options.port})
    deployment = serve.deployment(StageDeployment)
    urls = []
    for name in options.stages:
        app = deployment.options(name=f"holocap-{name}", ray_actor_options=actor, max_ongoing_requests=8,
                                 **scaling).bind(name, options.device, options.token)
        serve.run(app, name=name, route_prefix=f"/{name}", blocking=False)
        urls.append(f"http://{options.host}:{options.port}/{name}")
    return urls


def shutdown() -> None:
    """Stop Serve and Ray if they were started (serve.shutdown() alone would start Ray)."""
    import ray

    if not ray.is_initialized():
        return
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
