"""HMR/SPIN and PointHMR benchmark: regressor forward, SMPL skinning and one estimator step, ms
(PointHMR's rows: engine/bench/pointhmr.py).

Rows per torch thread count:
- forward b1 / b2: the network alone on (B, 3, 224, 224) (b2 is what the reference
  timing in ../shared/reference/spin/README.json measured for the official code);
- SMPL: SmplLayer (lbs) for one body;
- estimator step: HmrBodyEstimator.process on a 640x480 frame with pose landmarks (box,
  crop, normalise, forward, SMPL, camera, keypoints).
Weights: the installed "spin" files, else the seeded reference checkpoint (same
architecture, so the same arithmetic). SMPL: the installed "smpl" file, else a random
stand-in of SMPL's size (6,890 vertices, 24 joints, 10 shape coefficients).
"""
from __future__ import annotations

import logging
import lzma
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.bench import BenchOptions, median_ms, peak_rss_mb
from engine.bench.pointhmr import rows as pointhmr_rows
from engine.body.hmr_backend import SMPL_MODEL, SPIN_MODEL, HmrBodyEstimator
from engine.body.smpl_io import SmplModelData, save_smpl_npz
from engine.body.smpl_topology import SMPL_NUM_VERTICES, SMPL_PARENTS
from engine.frame import Frame
from engine.perception.result import PerceptionResult

log = logging.getLogger(__name__)

FRAME_HW = (480, 640)
THREADS = (1, 2)
OFFICIAL_B2_MS_2THREADS = 91.7  # README.json timings_cpu.spin_hmr_forward_batch2 (2 vCPU, torch 2.13)


def _installed(name: str) -> dict[str, Path] | None:
    try:
        from engine.weights.store import model_status
    except ImportError as exc:
        log.info("weights store unavailable (%s)", exc)
        return None
    status = model_status(name)
    return status.paths if status.state == "installed" else None


def _spin_files(options: BenchOptions, scratch: Path) -> tuple[Path, Path, str] | None:
    paths = _installed(SPIN_MODEL)
    if paths:
        return paths["checkpoint"], paths["mean_params"], "installed SPIN checkpoint"
    ref = options.shared_dir / "reference" / "spin"
    out = []
    for name in ("spin_model_checkpoint.pt", "smpl_mean_params_standin.npz"):
        src = ref / f"{name}.xz"
        if not src.is_file():
            return None
        with lzma.open(src) as fin, open(scratch / name, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        out.append(scratch / name)
    return out[0], out[1], "seeded reference checkpoint (official layout)"


def _smpl_file(scratch: Path) -> tuple[Path, str]:
    paths = _installed(SMPL_MODEL)
    if paths:
        return paths["model"], "installed SMPL model"
    rng = np.random.default_rng(0)
    v, j = SMPL_NUM_VERTICES, len(SMPL_PARENTS)
    regressor = rng.uniform(size=(j, v)).astype(np.float32)
    weights = rng.uniform(size=(v, j)).astype(np.float32)
    data = SmplModelData(
        v_template=rng.uniform(-0.5, 0.5, (v, 3)).astype(np.float32),
        shapedirs=rng.normal(0, 0.01, (v, 3, 10)).astype(np.float32),
        posedirs=rng.normal(0, 0.01, (v, 3, 9 * (j - 1))).astype(np.float32),
        J_regressor=regressor / regressor.sum(1, keepdims=True), weights=weights / weights.sum(1, keepdims=True),
        parents=np.array(SMPL_PARENTS, np.int64), faces=rng.integers(0, v, (13776, 3)).astype(np.int32))
    path = scratch / "smpl_standin.npz"
    save_smpl_npz(data, path)
    return path, "random SMPL-size stand-in"


def _perception() -> PerceptionResult:
    rng = np.random.default_rng(1)
    h, w = FRAME_HW
    pts = np.column_stack([rng.uniform(0.35 * w, 0.65 * w, 33), rng.uniform(0.1 * h, 0.95 * h, 33), np.zeros(33)])
    return PerceptionResult(image_size=FRAME_HW, pose_landmarks=pts.astype(np.float32),
                            pose_visibility=np.ones(33, np.float32))


def _step_ms(est: HmrBodyEstimator, repeats: int, warmup: int) -> tuple[float, float]:
    """One estimator step on a 640x480 frame with pose landmarks."""
    frame = Frame(np.random.default_rng(2).integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8), 0, 0.0, "bench")
    perception = _perception()
    return median_ms(lambda: est.process(frame, perception), repeats, warmup)


def _rows(est: HmrBodyEstimator, repeats: int, warmup: int) -> list[tuple[int, tuple[float, float], ...]]:
    net, smpl = est.regressor, est.body_model
    x1, x2 = torch.zeros(1, 3, 224, 224), torch.zeros(2, 3, 224, 224)
    betas, rot = torch.zeros(1, 10), torch.eye(3).expand(1, len(SMPL_PARENTS), 3, 3).contiguous()

    def timed(fn: Callable[[], object]) -> tuple[float, float]:
        def run_once() -> object:
            with torch.inference_mode():
                return fn()
        return median_ms(run_once, repeats, warmup)

    rows = []
    previous = torch.get_num_threads()
    try:
        for threads in THREADS:
            torch.set_num_threads(threads)
            rows.append((threads, timed(lambda: net(x1)), timed(lambda: net(x2)), timed(lambda: smpl(betas, rot)),
                         _step_ms(est, repeats, warmup)))
    finally:
        torch.set_num_threads(previous)
    return rows


def run(options: BenchOptions) -> str:
    repeats, warmup = (1, 0) if options.quick else (max(options.repeats // 2, 10), 3)
    with tempfile.TemporaryDirectory(prefix="holocap-bench-hmr-") as tmp:
        scratch = Path(tmp)
        spin = _spin_files(options, scratch)
        if spin is None:
            return "SPIN checkpoint not found (install `spin` or provide ../shared): skipped."
        smpl_path, smpl_note = _smpl_file(scratch)
        est = HmrBodyEstimator(spin[0], spin[1], smpl_path, device="cpu")
        rows = _rows(est, repeats, warmup)
        pointhmr_lines, numbers = pointhmr_rows(est.regressor, smpl_path, scratch,
                                                lambda e: _step_ms(e, repeats, warmup), repeats, warmup)
        est.close()
    lines = [f"CPU, {FRAME_HW[1]}x{FRAME_HW[0]} frame, median (p90) ms over {repeats} runs after {warmup} "
             f"warm-up runs; weights: {spin[2]}; body model: {smpl_note}.", "",
             "| torch threads | HMR forward b1 | HMR forward b2 | SMPL (lbs) b1 | estimator step |",
             "|---|---|---|---|---|"]
    for threads, f1, f2, s1, step in rows:
        lines.append(f"| {threads} | {f1[0]:.1f} ({f1[1]:.1f}) | {f2[0]:.1f} ({f2[1]:.1f}) | {s1[0]:.2f} ({s1[1]:.2f}) "
                     f"| {step[0]:.1f} ({step[1]:.1f}) |")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines += ["", f"Official SPIN code, batch 2, 2 threads on a 2 vCPU machine (torch 2.13 CPU): "
              f"{OFFICIAL_B2_MS_2THREADS} ms (../shared/reference/spin/README.json).",
              f"Load average (1, 5, 15 min) when this finished: {load}; other processes on the shared cores "
              "inflate the numbers, the 2-thread ones most.",
              f"Peak RSS of the benchmark process: {peak_rss_mb():.0f} MB.", "", "### PointHMR", "",
              *pointhmr_lines, "",
              f"Target: PointHMR's forward at most 2x HMR's. Measured: {numbers['ratio_1']:.1f}x (1 thread), "
              f"{numbers['ratio_2']:.1f}x (2 threads). Its arithmetic is {numbers['gmac'] / numbers['gmac_hmr']:.1f}x "
              "HMR's and this CPU already runs it at a higher rate than HMR (GMAC per second from the rows above), "
              "so 2x would need several times the CPU's throughput: reduced precision (outside the parity bound of "
              "1e-4) or a GPU, not a rearrangement of the same arithmetic.",
              "Speed-ups kept (outputs unchanged within the parity test's bound): mesh upsampling as one sparse "
              "product for the batch (the official code loops over samples), attention masks built once as "
              "additive float masks (the official code moves boolean masks to the device on every call), "
              "torch.inference_mode, and no 112x112 heatmaps in the estimator (a training/visualisation "
              "output). channels_last was measured and is slower here (not used). Before/after: the official "
              "code's column against the estimator column: within a few percent, i.e. within the noise of a "
              "shared 2-core machine (the official numbers were taken at load 0.9): the forward is bound by the "
              "heads' convolutions, which none of these changes can touch without changing the outputs."]
    return "\n".join(lines)
