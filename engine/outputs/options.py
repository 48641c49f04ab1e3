"""The outputs a run asks for, from the command line to an `OutputGroup`.

`add_output_arguments(parser)` adds `--serve-mjpeg HOST:PORT`, `--mjpeg-token`,
`--virtual-camera [DEVICE]` and `--record [FOLDER]` to an argparse parser;
`OutputOptions.from_args(namespace)` and `build_outputs(options)` turn them into outputs.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.outputs.group import OutputGroup
from engine.outputs.mjpeg import MjpegServer, MjpegSettings, parse_host_port
from engine.outputs.recorder import Recorder, RecorderSettings, new_recording_dir
from engine.outputs.virtual_camera import VirtualCamera, VirtualCameraSettings

# `--virtual-camera` without a device: any free virtual camera.
ANY_DEVICE = "auto"


@dataclass(frozen=True)
class OutputOptions:
    """mjpeg: (host, port) to serve on, or None. mjpeg_token: required ?token= when set.
    virtual_camera: use one. virtual_camera_device: e.g. "/dev/video4" (None: any).
    record_parent: make a new timestamped recording folder in it, or None."""

    mjpeg: tuple[str, int] | None = None
    mjpeg_token: str | None = None
    mjpeg_lan: bool = False
    virtual_camera: bool = False
    virtual_camera_device: str | None = None
    record_parent: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, default_record_parent: Path = Path("recordings")) -> "OutputOptions":
        record = getattr(args, "record", None)
        camera = getattr(args, "virtual_camera", None)
        return cls(
            mjpeg=getattr(args, "serve_mjpeg", None),
            mjpeg_token=getattr(args, "mjpeg_token", None),
            mjpeg_lan=bool(getattr(args, "mjpeg_lan", False)),
            virtual_camera=camera is not None,
            virtual_camera_device=None if camera in (None, ANY_DEVICE) else camera,
            record_parent=None if record is None else (default_record_parent if record == "" else Path(record)),
        )


def _host_port(text: str) -> tuple[str, int]:
    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("outputs (the clean rendered view)")
    group.add_argument("--serve-mjpeg", metavar="HOST:PORT", type=_host_port,
                       help="serve an MJPEG stream (/stream.mjpg, /snapshot.jpg, page at /); "
                            "HOST defaults to 127.0.0.1, PORT 0 picks a free port")
    group.add_argument("--mjpeg-token", metavar="TOKEN",
                       help="require ?token=TOKEN on every MJPEG request")
    group.add_argument("--mjpeg-lan", action="store_true",
                       help="answer any Host name (e.g. mypc.local) without a token: only on a trusted "
                            "network (by default a page from another site cannot reach the stream)")
    group.add_argument("--virtual-camera", metavar="DEVICE", nargs="?", const=ANY_DEVICE,
                       help="send 1280x720@30 to a virtual camera (pyvirtualcam); optional device, e.g. /dev/video4")
    group.add_argument("--record", metavar="FOLDER", nargs="?", const="",
                       help="record video, per-frame results and meshes into a new folder inside "
                            "FOLDER (default: ./recordings); readable even if the app is killed")


def build_outputs(options: OutputOptions, recorder_settings: RecorderSettings = RecorderSettings()) -> OutputGroup:
    """The outputs `options` ask for, not started (OutputGroup.start() opens them and raises
    VirtualCameraUnavailable, with its diagnosis, or OSError for a taken port)."""
    group = OutputGroup()
    if options.mjpeg is not None:
        host, port = options.mjpeg
        group.add(MjpegServer(MjpegSettings(host=host, port=port, token=options.mjpeg_token,
                                                lan=options.mjpeg_lan)))
    if options.virtual_camera:
        group.add(VirtualCamera(VirtualCameraSettings(device=options.virtual_camera_device)))
    if options.record_parent is not None:
        group.add(Recorder(new_recording_dir(options.record_parent), recorder_settings))
    return group
