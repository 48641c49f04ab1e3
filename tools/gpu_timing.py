#!/usr/bin/env python3
"""Timings of the torch stages on one device, for tools/gpu_check.sh (the GPU rows of
docs/PERFORMANCE.md).

    python tools/gpu_timing.py --device cuda [--quick] [--write]

Rows: PIFu at 512x512 (netG + netC filter, then lossless 17-257 localisation and the
colour render of one view: what one volume frame costs), HMR forward, 3DDFA_V2 MobileNetV1
forward and PointHMR forward, batch 1, in float32 and, on CUDA, float16 autocast. Random or
seeded weights (cost does not depend on them; nothing here is shown as a result). Needs
torch, numpy, scipy and OpenCV only, so that it runs in a GPU machine's own Python.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

log = logging.getLogger("gpu_timing")


def timed_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> tuple[float, float]:
    """engine.bench.median_ms (median, p90) of fn, with the device synchronised after each
    call so that queued GPU work is counted."""
    from engine.bench import median_ms

    def synced() -> None:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return median_ms(synced, repeats, warmup)


def _precision(device: torch.device, half: bool):
    if not half:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16)


FULL_SCHEDULE = (17, 33, 65, 129, 257)
QUICK_SCHEDULE = (17, 33, 65)  # the dry run's: 257 lossless costs ~30 s per frame on a 2-core CPU


def pifu_frame(device: torch.device, half: bool, schedule: tuple[int, ...] = FULL_SCHEDULE) -> Callable[[], object]:
    from engine.volume.pifu import HGPIFu, PifuField, PifuModel, ResBlkPIFu
    from engine.volume.render import render_view

    torch.manual_seed(0)
    model = PifuModel(HGPIFu(), ResBlkPIFu(), device)
    image = torch.rand(1, 3, 512, 512, device=device) * 2 - 1

    def frame() -> object:
        with _precision(device, half):
            field = PifuField.from_image(model, image)
            return render_view(field.occupancy, field.color, 0.0, 0.0, resolutions=schedule, mode="lossless",
                               device=device)
    return frame


def hmr_forward(device: torch.device, half: bool) -> Callable[[], object]:
    from engine.body.hmr import Hmr

    net = Hmr(np.zeros(144, np.float32), np.zeros(10, np.float32), np.array([0.9, 0, 0], np.float32)).to(device).eval()
    x = torch.zeros(1, 3, 224, 224, device=device)
    return lambda: _run(net, x, device, half)


def tddfa_forward(device: torch.device, half: bool) -> Callable[[], object]:
    from engine.nets.mobilenet_v1 import MobileNetV1

    net = MobileNetV1(widen_factor=1.0).to(device).eval()
    x = torch.zeros(1, 3, 120, 120, device=device)
    return lambda: _run(net, x, device, half)


def pointhmr_forward(device: torch.device, half: bool) -> Callable[[], object]:
    from engine.bench.pointhmr import reference_mesh_paths
    from engine.body.pointhmr import PointHmr, load_mesh_arrays
    from engine.body.pointhmr_backend import MESH_FILES

    paths = reference_mesh_paths()
    mesh = load_mesh_arrays(*(paths[k] for k in MESH_FILES))
    net = PointHmr(mesh).to(device).eval()
    x = torch.zeros(1, 3, 224, 224, device=device)
    return lambda: _run(net, x, device, half, heatmaps=False)


def _run(net: torch.nn.Module, x: torch.Tensor, device: torch.device, half: bool, **kwargs) -> object:
    with torch.inference_mode(), _precision(device, half):
        return net(x, **kwargs)


def table(device: torch.device, quick: bool) -> str:
    repeats, warmup = (1, 0) if quick else (20, 5)
    schedule = QUICK_SCHEDULE if quick else FULL_SCHEDULE
    pifu = f"PIFu 512x512: filter + lossless localisation {schedule[0]}-{schedule[-1]} + colour render"
    # float16 on the CPU is not what a CPU user would run: CPU rows are float32 only.
    precisions = (False, True) if device.type == "cuda" else (False,)
    rows = ["| stage | precision | ms median (p90) | per second (median) |", "|---|---|---:|---:|"]
    for name, make in ((pifu, lambda d, h: pifu_frame(d, h, schedule)),
                       ("HMR forward b1, 224x224", hmr_forward), ("3DDFA_V2 MobileNetV1 forward b1, 120x120", tddfa_forward),
                       ("PointHMR forward b1, 224x224 (no heatmaps)", pointhmr_forward)):
        for half in precisions:
            fn = make(device, half)
            med, p90 = timed_ms(fn, device, repeats if "PIFu" not in name else max(1, repeats // 4), warmup)
            rows.append(f"| {name} | {'float16 autocast' if half else 'float32'} | {med:.1f} ({p90:.1f}) | "
                        f"{1e3 / med:.1f} |")
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    return "\n".join([f"Device: {what}; torch {torch.__version__}; {repeats} runs after {warmup} warm-up runs.", "",
                      *rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="one run each (the dry run's smoke test)")
    ap.add_argument("--write", action="store_true", help="write the rows into docs/PERFORMANCE.md (section gpu)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log.error("CUDA was asked for, but torch %s sees no CUDA device", torch.__version__)
        return 2
    body = table(device, args.quick)
    print(body)
    if args.write:
        from engine.bench import write_section
        log.info("written to %s", write_section("gpu", body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
