"""The command line of the remote back-end: `holocap serve …` and `--remote URL` for gui/run."""
from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

log = logging.getLogger(__name__)

TOKEN_ENV = "HOLOCAP_TOKEN"  # where a token may come from instead of the command line (ps shows flags)


def _replicas(text: str) -> int | str:
    from engine.settings_schema import cli_type

    return text if text == "auto" else cli_type("replicas")(text)


def add_remote_args(p: argparse.ArgumentParser) -> None:
    from engine.settings_schema import cli_type

    p.add_argument("--remote", metavar="URL", type=cli_type("remote_url"), default=None,
                   help="run the heavy stages on a `holocap serve` server, e.g. http://gpu-box:8000")
    p.add_argument("--remote-stages", default="face,body,volume",
                   help="which of the chosen stages go to the server (default: face,body,volume)")
    p.add_argument("--remote-token", default=None, help=f"the server's token (or set {TOKEN_ENV})")
    p.add_argument("--remote-timeout", type=cli_type("remote_timeout_s"), default=1.0,
                   help="seconds without an answer before a stage falls back to local (default 1)")
    p.add_argument("--remote-quality", type=cli_type("remote_quality"), default=90,
                   help="JPEG quality of the frames sent (default 90)")
    p.add_argument("--remote-lossless", action="store_true",
                   help="send PNG frames and exact masks: remote results equal local ones (more bytes)")


def add_serve_parser(sub: Any) -> None:
    from engine.settings_schema import cli_type

    serve = sub.add_parser("serve", help="serve the heavy stages to `--remote` clients (Ray Serve)")
    serve.add_argument("--stages", default="face,body,volume", help="stages to deploy (default face,body,volume)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (anything but loopback needs --token)")
    serve.add_argument("--port", type=cli_type("port"), default=8000)
    serve.add_argument("--replicas", type=_replicas, default=1, help="replicas per stage: N or auto")
    serve.add_argument("--token", default=None, help=f"require this token on every request (or set {TOKEN_ENV})")
    serve.add_argument("--address", default=None, help="join this Ray cluster (e.g. ray://head:10001) "
                                                      "instead of starting one here")
    serve.add_argument("--num-cpus", type=cli_type("num_cpus"), default=None,
                       help="cores of the Ray cluster started here (default: all)")


def remote_options_from_args(args: Any, chosen_stages: list[str] | None = None, url: str | None = None) -> Any:
    """RemoteOptions from `--remote …` (or `url`, the app's saved server, with the other
    flags' values), or None without either."""
    url = getattr(args, "remote", None) or url
    if not url:
        return None
    from engine.remote.client import RemoteOptions
    from engine.stage_factory import StageBuildError

    served = ("face", "body", "volume")
    stages = tuple(s.strip() for s in str(getattr(args, "remote_stages", "face,body,volume")).split(",") if s.strip())
    bad = [s for s in stages if s not in served]
    if bad:
        raise StageBuildError(f"--remote-stages: {', '.join(bad)} cannot run remotely; choose from {', '.join(served)}")
    if chosen_stages is not None:
        stages = tuple(s for s in stages if s in chosen_stages)
    try:
        return RemoteOptions(url=url, token=getattr(args, "remote_token", None) or os.environ.get(TOKEN_ENV) or None,
                             timeout_s=float(getattr(args, "remote_timeout", 1.0)),
                             jpeg_quality=int(getattr(args, "remote_quality", 90)),
                             lossless=bool(getattr(args, "remote_lossless", False)), stages=stages)
    except ValueError as exc:
        raise StageBuildError(str(exc)) from None


def cmd_serve(args: Any, settings: Any) -> int:
    """Deploy, print where, and serve until Ctrl-C / SIGTERM."""
    from engine.remote.server import ServeOptions, check_options, deploy, shutdown

    device = settings.device if settings.device != "auto" else "cpu"
    if settings.device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    options = ServeOptions(stages=tuple(s.strip() for s in args.stages.split(",") if s.strip()), device=device,
                           host=args.host, port=args.port, replicas=args.replicas,
                           token=args.token or os.environ.get(TOKEN_ENV) or None, address=args.address,
                           num_cpus=args.num_cpus)
    check_options(options)  # before Ray starts (seconds): a refused bind says so at once
    try:
        urls = deploy(options)
        print("holocap serve: " + ", ".join(urls) + (" (token required)" if options.token else ""), flush=True)
        while True:  # until a signal (engine.signals turns SIGTERM/SIGINT into KeyboardInterrupt)
            time.sleep(1.0)
    except KeyboardInterrupt:
        log.info("stopping the server")
    finally:
        shutdown()  # Ray's processes go with us, whatever happened
    return 0
