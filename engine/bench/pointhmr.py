"""PointHMR rows of `bench hmr`: forward ms on the CPU at its 224x224 input with 1 and 2
torch threads, split into backbone / heads + heatmap sampling / transformer / mesh
upsampling, its arithmetic (multiply-accumulates, counted by torch's FLOP counter) against
HMR's, one estimator step (box, crop, forward, SMPL joints, camera, keypoints) on the HMR
rows' frame, and the memory it adds.

Weights: the installed "pointhmr" files, else seeded weights on the repository's reference
mesh stand-ins (tests/data/pointhmr_reference): same architecture, same arithmetic.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.bench import median_ms, peak_rss_mb
from engine.body.pointhmr import INPUT_RES, PointHmr, load_mesh_arrays
from engine.body.pointhmr_backend import MESH_FILES, POINTHMR_MODEL, PointHmrBodyEstimator
from engine.nets.seeded import seeded_state_dict
from engine.paths import repo_root

log = logging.getLogger(__name__)

THREADS = (1, 2)
StepTimer = Callable[[PointHmrBodyEstimator], tuple[float, float]]
# Measured on 2026-12-07 on this 2-core machine (load average 0.9) by a throwaway script that
# builds the official network as tools/make_pointhmr_reference.py does: forward b1, no_grad.
OFFICIAL_B1_MS = {1: 1164.0, 2: 670.0}


def reference_mesh_paths() -> dict[str, Path]:
    """The repository's seeded stand-ins for PointHMR's SMPL-derived mesh files, by manifest
    key (tests/data/pointhmr_reference): the real files' shapes, so the real arithmetic."""
    ref = repo_root() / "tests/data/pointhmr_reference"
    return dict(zip(MESH_FILES, (ref / "mesh_downsampling.npz", ref / "smpl_431_adjmat_indices.pt",
                                 ref / "smpl_431_adjmat_values.pt", ref / "smpl_431_adjmat_size.pt")))


def _estimator(smpl_path: Path, scratch: Path) -> tuple[PointHmrBodyEstimator, str]:
    try:
        from engine.weights.store import model_status
        status = model_status(POINTHMR_MODEL)
    except ImportError as exc:
        log.info("weights store unavailable (%s)", exc)
        status = None
    if status is not None and status.state == "installed":
        return PointHmrBodyEstimator(status.paths, smpl_path, device="cpu"), "installed PointHMR checkpoint"
    paths: dict[str, str | Path] = dict(reference_mesh_paths())
    template = PointHmr(load_mesh_arrays(*(paths[k] for k in MESH_FILES))).state_dict()
    paths["checkpoint"] = scratch / "pointhmr_seeded.bin"
    torch.save(seeded_state_dict(template, 1), paths["checkpoint"])
    return PointHmrBodyEstimator(paths, smpl_path, device="cpu"), "seeded weights (official layout)"


def multiply_accumulates(model: torch.nn.Module, x: torch.Tensor) -> float:
    """GMAC of one forward (torch's FLOP counter counts 2 per multiply-accumulate)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 2e9


def rows(hmr_net: torch.nn.Module, smpl_path: Path, scratch: Path, step_ms: StepTimer, repeats: int,
         warmup: int) -> tuple[list[str], dict[str, float]]:
    """Markdown lines and the numbers (for the ratio to HMR) of the PointHMR section.
    step_ms(estimator) times one estimator step on the HMR rows' frame."""
    rss_before = peak_rss_mb()
    est, note = _estimator(smpl_path, scratch)
    model = est.regressor
    x = torch.zeros(1, 3, INPUT_RES, INPUT_RES)
    gmac, gmac_hmr = multiply_accumulates(model, x), multiply_accumulates(hmr_net, x)

    def timed(fn) -> tuple[float, float]:
        def once() -> object:
            with torch.inference_mode():
                return fn()
        return median_ms(once, repeats, warmup)

    with torch.inference_mode():
        feats = model.backbone(x)
        logits, features, grid = model.heads(x)
        tokens = model.tokens(logits, features, grid)
        coarse = model.transformer(tokens)[2]
    tr = model.transformer

    def upsample() -> object:
        return tr.upsample(tr.upsample_full, tr.upsample(tr.upsample_mid, coarse))

    table = ["| torch threads | forward b1 (with heatmaps) | forward b1, estimator (no heatmaps) | backbone | "
             "heads + heatmap sampling | transformer | mesh upsampling | HMR forward b1 | PointHMR / HMR | "
             "official code b1 | estimator step |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    numbers: dict[str, float] = {"gmac": gmac, "gmac_hmr": gmac_hmr}
    previous = torch.get_num_threads()
    try:
        for threads in THREADS:
            torch.set_num_threads(threads)
            full = timed(lambda: model(x))
            bare = timed(lambda: model(x, heatmaps=False))
            backbone = timed(lambda: model.backbone(x))
            sampling = timed(lambda: model.tokens(logits, features, grid))
            heads_total = timed(lambda: (model.heatmap_layer(feats[0]), model.feature_extract_layer(feats[0]),
                                         model.grid_layer(feats[1]), model.tokens(logits, features, grid)))
            transformer = timed(lambda: tr(tokens))
            up = timed(upsample)
            hmr = timed(lambda: hmr_net(x))
            step = step_ms(est)
            numbers[f"ratio_{threads}"] = bare[0] / hmr[0]
            table.append(f"| {threads} | {full[0]:.0f} ({full[1]:.0f}) | {bare[0]:.0f} ({bare[1]:.0f}) | {backbone[0]:.0f} | "
                         f"{heads_total[0]:.0f} (sampling alone {sampling[0]:.1f}) | {transformer[0] - up[0]:.0f} | "
                         f"{up[0]:.1f} | {hmr[0]:.0f} | {bare[0] / hmr[0]:.1f}x | {OFFICIAL_B1_MS[threads]:.0f} | "
                         f"{step[0]:.0f} ({step[1]:.0f}) |")
    finally:
        torch.set_num_threads(previous)
        est.close()
    lines = [f"PointHMR, CPU, one 224x224 crop, median (p90) ms over {repeats} runs after {warmup} warm-up runs; "
             f"weights: {note}.", "", *table, "",
             f"Arithmetic per forward: PointHMR {gmac:.1f} GMAC, HMR {gmac_hmr:.1f} GMAC "
             f"({gmac / gmac_hmr:.1f}x). Most of PointHMR's is in its two 56x56 heads: the 512-channel feature "
             "head and the 431-channel heatmap head each run three 3x3 convolutions at full width.",
             f"Peak RSS of the benchmark process rose from {rss_before:.0f} MB to {peak_rss_mb():.0f} MB with the "
             f"PointHMR model loaded and run ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)."]
    return lines, numbers
