"""Command-line output options to an OutputGroup."""
from __future__ import annotations

import argparse

import pytest

from engine.outputs.mjpeg import MjpegServer
from engine.outputs.options import OutputOptions, add_output_arguments, build_outputs
from engine.outputs.recorder import Recorder
from engine.outputs.virtual_camera import VirtualCamera


def _parse(argv):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_output_arguments(parser)
    return parser.parse_args(argv)


def test_nothing_asked_nothing_built():
    options = OutputOptions.from_args(_parse([]))
    assert options == OutputOptions() and len(build_outputs(options)) == 0


def test_all_outputs(tmp_path):
    args = _parse(["--serve-mjpeg", "0.0.0.0:8080", "--mjpeg-token", "t", "--virtual-camera", "/dev/video4",
                   "--record", str(tmp_path)])
    options = OutputOptions.from_args(args)
    assert options.mjpeg == ("0.0.0.0", 8080) and options.mjpeg_token == "t"
    assert options.virtual_camera and options.virtual_camera_device == "/dev/video4"
    outputs = list(build_outputs(options))
    assert [type(o) for o in outputs] == [MjpegServer, VirtualCamera, Recorder]
    assert outputs[0].settings.host == "0.0.0.0" and outputs[0].settings.token == "t"
    assert outputs[1].settings.device == "/dev/video4" and outputs[1].settings.width == 1280
    assert outputs[2].directory.parent == tmp_path and not outputs[2].directory.exists()  # made on start


def test_flags_without_values(tmp_path):
    options = OutputOptions.from_args(_parse(["--virtual-camera", "--record"]), default_record_parent=tmp_path)
    assert options.virtual_camera and options.virtual_camera_device is None
    assert options.record_parent == tmp_path


def test_bad_host_port_is_an_argument_error():
    with pytest.raises(argparse.ArgumentError, match="HOST:PORT"):
        _parse(["--serve-mjpeg", "localhost:http"])
