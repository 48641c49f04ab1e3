"""holocap: one webcam in, live 3D out.

    python main.py                  # the desktop app (same as `gui`)
    python main.py run --source clip.mp4 --headless --out out/
    python main.py cameras          # list cameras and their modes
    python main.py weights list     # third-party weights for the paper back-ends
    python main.py bench face       # speed/memory into docs/PERFORMANCE.md
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

# Before cv2 is first imported: keep FFmpeg/OpenCV chatter about a broken file from
# burying our one-line message.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# Before numpy is imported: OpenBLAS's own threads spin against the pipeline's threads on
# small per-frame solves (a 70x70 solve took 14.5 ms instead of 73 us on 2 cores).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

log = logging.getLogger("holocap")

COMMANDS = ("gui", "run", "cameras", "weights", "bench", "serve")
BENCHMARKS = ("sources", "perception", "face", "tddfa", "body", "volume", "volume_field", "outputs", "render", "hmr", "app",
              "quality", "remote", "soak")


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming it and what is allowed (no usage dump):
    `holocap: error: argument --hfov: '0': expected a number from 1 to 179`, exit status 2."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(2, f"holocap: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from engine.remote.cli import add_remote_args, add_serve_parser
    from engine.settings_schema import DEVICES, cli_type

    parser = OneLineParser(
        prog="holocap", description="Live 3D from one webcam: face, body and volumetric capture.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--device", default=None, choices=DEVICES,
                        help="where torch models run (default: saved setting, else auto)")
    parser.add_argument("--reset-settings", action="store_true", help="forget saved settings first")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")

    def add_source_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--source", help="video file, image file or folder, camera:N / camera:NAME, synthetic")
        p.add_argument("--stages", default=None,
                       help="comma-separated: perception,face,body,volume (default: saved setting)")
        p.add_argument("--loop", action="store_true", help="restart a video file at its end")
        p.add_argument("--camera-mode", default=None, type=cli_type("camera_mode"),
                       help="camera mode WxH@fps, e.g. 1280x720@30")
        p.add_argument("--person", type=cli_type("person"), default=None,
                       help="with several people: k-th from the left (default: largest, most central)")
        p.add_argument("--face-backend", type=cli_type("face_backend"), default=None,
                       help="auto | anny | bfm | tddfa (default: saved setting)")
        p.add_argument("--body-backend", type=cli_type("body_backend"), default=None,
                       help="auto | anny | hmr | pointhmr (default: saved setting)")
        p.add_argument("--volume-backend", type=cli_type("volume_backend"), default=None,
                       help="auto | field | pifu (default: saved setting)")
        p.add_argument("--hfov", type=cli_type("hfov_deg"), default=None,
                       help="the camera's horizontal field of view in degrees, 1-179 (default: saved, 60)")
        p.add_argument("--volume-quality", type=cli_type("volume_quality"), default=None,
                       help="volume lattice: auto adapts 65/129/257 to the frame budget (default: "
                            "saved setting in the app, high with three views headless)")
        p.add_argument("--target-fps", type=_positive_fps, default=None,
                       help="frame-time budget of the volume in fps (default: the source's, at most 30)")
        add_remote_args(p)

    gui = sub.add_parser("gui", help="the desktop app (default)")
    add_source_args(gui)
    gui.add_argument("--view", choices=["overlay", "mesh", "volume", "split"], default=None)
    gui.add_argument("--shading", type=cli_type("shading"), default=None,
                     help="mesh view: textured (the person's colours), phong or matcap")
    gui.add_argument("--frames", type=_positive_int, default=None, help="process N frames, then exit")
    gui.add_argument("--screenshot", type=Path, default=None, help="save a grab of the window at exit")
    gui.add_argument("--event-mode", action="store_true", help="fullscreen, autostart, UI hidden (F1)")

    run = sub.add_parser("run", help="process a source (headless with --headless)")
    add_source_args(run)
    run.add_argument("--headless", action="store_true", help="no window: write files to --out")
    run.add_argument("--out", type=Path, default=Path("out"), help="output folder for headless runs")
    run.add_argument("--max-frames", type=_positive_int, default=None, help="stop after N frames (N ≥ 1)")
    run.add_argument("--segment-minutes", type=cli_type("segment_minutes"), default=None,
                     help="--loop and camera runs cut videos and results into segments this long (default: saved, 10)")
    run.add_argument("--disk-budget-gb", type=cli_type("disk_budget_gb"), default=None,
                     help="such runs keep their outputs within this, deleting the oldest segments (default: saved, 20)")
    run.add_argument("--export-meshes", action="store_true", help="write per-frame .ply meshes to OUT/meshes")
    run.add_argument("--no-progress", action="store_true")
    from engine.outputs.options import add_output_arguments

    add_output_arguments(run)

    add_serve_parser(sub)

    sub.add_parser("cameras", help="list cameras by name with their modes")

    weights = sub.add_parser("weights", help="list | fetch NAME | verify [NAME] | import PATH")
    weights.add_argument("weights_args", nargs=argparse.REMAINDER)

    bench = sub.add_parser("bench", help="benchmarks into docs/PERFORMANCE.md")
    bench.add_argument("name", choices=BENCHMARKS + ("all",))
    bench.add_argument("--quick", action="store_true", help="few repeats (smoke test of the benchmark)")
    bench.add_argument("--repeats", type=_positive_int, default=50)
    bench.add_argument("--source", type=Path, default=None, help="app: the clip to play (default: talking head)")
    bench.add_argument("--fps", type=_positive_fps, default=None, help="app: pace the source at this rate (30)")
    bench.add_argument("--seconds", type=_positive_seconds, default=None,
                       help="app: seconds measured per configuration (20); soak: length of the run (1800)")
    bench.add_argument("--json", type=Path, default=None, help="app, quality: also write the rows as JSON to FILE")
    bench.add_argument("--face-clip", type=Path, default=None, help="quality: the face clip (default: talking head)")
    bench.add_argument("--body-clip", type=Path, default=None, help="quality: the body clip (default: street clip)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _number_in(lo: float, hi: float, what: str):
    """An argparse type: a finite number in (lo, hi], else a one-line refusal."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (lo < value <= hi):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_positive_fps = _number_in(0.0, 240.0, "a frame rate between 0 and 240")
_positive_seconds = _number_in(0.0, 7 * 86400.0, "a positive number of seconds (at most a week)")


def _stage_list(arg: str | None, settings) -> list[str]:
    if arg:
        return [s for s in arg.split(",") if s.strip()]
    return [name for name, on in settings.stages.items() if on]


def _open_source(spec: str, loop: bool, camera_mode: str | None, realtime: bool):
    from engine.sources.factory import open_source

    source = open_source(spec, loop=loop, camera_mode=camera_mode, realtime=realtime)
    return source


def _is_static_images(source) -> bool:
    """Photos and image folders: detect on every frame instead of tracking across frames."""
    from engine.sources.images import ImageSource

    return isinstance(source, ImageSource)


def cmd_run(args, settings) -> int:
    if not args.source:
        raise UserError("run needs --source (a video, image, folder, camera:N or synthetic)")
    if not args.headless:
        return cmd_gui(args, settings)
    from engine.headless import HeadlessOptions, run_headless
    from engine.remote.cli import remote_options_from_args
    from engine.stage_factory import StageOptions, build_stages, resolve_stage_names

    # Everything the user typed is checked before a model loads (which takes seconds).
    _check_writable_folder("--out", args.out)
    if getattr(args, "record", None) is not None:
        _check_writable_folder("--record", Path(args.record or "recordings"))
    stage_names = resolve_stage_names(_stage_list(args.stages, settings))
    source = _open_source(args.source, args.loop, args.camera_mode, realtime=False)
    try:
        options = StageOptions(
            device=settings.device, face_backend=args.face_backend or settings.face_backend,
            body_backend=args.body_backend or settings.body_backend,
            volume_backend=args.volume_backend or settings.volume_backend,
            smoothing=settings.smoothing, hfov_deg=args.hfov or settings.hfov_deg,
            static_images=_is_static_images(source),
            person=None if args.person is None or args.person < 0 else args.person,
            export_dir=(args.out / "meshes") if args.export_meshes else None,
            volume_quality=args.volume_quality, target_fps=args.target_fps,
            # Mesh colours cost ~5 ms of CPU per frame; only mesh files and recordings carry them.
            mesh_colours=bool(args.export_meshes) or args.record is not None,
            remote=remote_options_from_args(args, stage_names))
        t_load = time.monotonic()
        stages = build_stages(stage_names, options)
        load_s = time.monotonic() - t_load
        outputs = _make_outputs(args)
        summary = run_headless(source, stages, HeadlessOptions(
            out_dir=args.out, max_frames=args.max_frames, progress=not args.no_progress,
            outputs=outputs, export_meshes_dir=(args.out / "meshes") if args.export_meshes else None,
            load_s=load_s, segment_minutes=args.segment_minutes or settings.segment_minutes,
            disk_budget_gb=args.disk_budget_gb or settings.disk_budget_gb))
    finally:
        source.close()
    settings.last_source = args.source
    return _report_run(summary, args.out)


def _check_writable_folder(flag: str, folder: Path) -> None:
    """`folder` is, or can be made, a folder we may write in; else a UserError naming flag."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{flag} {folder}: is a file, not a folder")
    parent = folder
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {folder}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {folder}: no permission to write in {parent}")


def _report_run(summary: dict, out: Path) -> int:
    """One line on what was written and the exit status that tells the truth about the run:
    128 + signal when stopped by one, 3 when an output failed (the others went on), else 0."""
    from engine.signals import exit_status

    log.info("processed %d frames at %.1f fps -> %s", summary["frames_processed"], summary["fps"], out)
    written = ", ".join(str(out / name) for name in summary.get("files", ()))
    failed = summary.get("output_errors") or {}
    if failed:
        for name, why in failed.items():
            print(f"holocap: output {name} failed: {why}", file=sys.stderr)
    print(f"wrote {written}" if written else "wrote nothing")
    if summary.get("interrupted") and summary.get("signal_number"):
        return exit_status(summary["signal_number"])
    return 3 if failed else 0


def _make_outputs(args):
    """The outputs asked for on the command line, as one OutputGroup (or None)."""
    from engine.outputs.options import OutputOptions, build_outputs

    group = build_outputs(OutputOptions.from_args(args))
    return group if len(group) else None


def cmd_gui(args, settings) -> int:
    from app.launch import run_gui

    return run_gui(args, settings)


def cmd_cameras(args, settings) -> int:
    from engine.sources.camera import list_cameras

    cameras = list_cameras()
    if not cameras:
        print("no cameras found")
        return 0
    for cam in cameras:
        print(f"camera:{cam.index}  {cam.name}  ({cam.path})")
        for mode in cam.modes:
            print(f"    {mode}")
    return 0


def cmd_weights(args, settings) -> int:
    from engine.weights.cli import main as weights_main

    return weights_main(args.weights_args)


def cmd_bench(args, settings) -> int:
    from engine.bench import BenchOptions, write_section

    # `all` leaves out the half-hour soak; ask for it by name.
    names = tuple(b for b in BENCHMARKS if b != "soak") if args.name == "all" else (args.name,)
    options = BenchOptions(repeats=5 if args.quick else args.repeats, device=settings.device, quick=args.quick,
                           source=args.source, fps=args.fps, seconds=args.seconds, json=args.json,
                           face_clip=args.face_clip, body_clip=args.body_clip)
    for name in names:
        # The app benchmark drives the Qt window, so it lives in app/ (engine never imports Qt).
        module = importlib.import_module("app.bench" if name == "app" else f"engine.bench.{name}")
        body = module.run(options)
        path = write_section(name, body)
        print(body)
        print(f"(written to {path})")
    return 0


def cmd_serve(args, settings) -> int:
    from engine.remote.cli import cmd_serve as serve

    return serve(args, settings)


HANDLERS = {"gui": cmd_gui, "run": cmd_run, "cameras": cmd_cameras, "weights": cmd_weights, "bench": cmd_bench,
            "serve": cmd_serve}


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors whose message is meant for the user (imported lazily: they live in engine)."""
    types: list[type[BaseException]] = [UserError]
    for module, name in (("engine.sources.errors", "SourceError"), ("engine.stage_factory", "StageBuildError"),
                         ("engine.weights.errors", "WeightsError"), ("app.launch", "NoDisplayError"),
                         ("engine.remote.errors", "ServeError"),
        ("engine.outputs.virtual_camera", "VirtualCameraUnavailable")):
        try:
            types.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(types)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not any(a in COMMANDS for a in argv) and not any(a in ("-h", "--help") for a in argv):
        argv = [*argv, "gui"] if not argv or argv[0].startswith("-") else argv
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "gui"])

    from engine.logs import setup_logging
    from engine.settings import load_settings, reset_settings, save_settings

    log_path = setup_logging(args.log_level)
    if args.reset_settings:
        reset_settings()
    settings = load_settings()
    if args.device:
        settings.device = args.device
    from engine.signals import exit_status, stop_on_signals

    try:
        with stop_on_signals():
            status = HANDLERS[args.command](args, settings)
        save_settings(settings)
        return status
    except _user_error_types() as exc:
        log.debug("user error", exc_info=True)
        print(f"holocap: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)
        print(f"holocap: interrupted ({'SIGINT' if signum == 2 else exc})", file=sys.stderr)
        return exit_status(signum)
    except Exception as exc:  # last resort: one line for the user, the traceback in the log
        logging.getLogger("holocap").debug("unexpected error", exc_info=True)
        with open(log_path, "a") as f:
            import traceback

            traceback.print_exc(file=f)
        print(f"holocap: unexpected error: {type(exc).__name__}: {exc} (details in {log_path})",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
