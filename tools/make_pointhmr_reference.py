#!/usr/bin/env python3
"""Make a PointHMR parity reference by running the official code (DCVL-3D/PointHMR_release).

    python tools/make_pointhmr_reference.py --official PATH --seed N --images DIR --out DIR

PATH is a checkout of the official repository (MIT); its modules are imported from there,
never copied. No trained checkpoint is reachable, so the network is built as the official
inference script builds it (`PointHMR(args, mesh_sampler)` with that script's argument
defaults) and filled by engine.nets.seeded's rule from the seed; its BatchNorm running
statistics are then calibrated on the input images (one no-grad forward with BatchNorm in
training mode and cumulative averaging), rounded to float16 and stored. Everything SMPL
derives is replaced by seeded stand-ins of the same shapes, written in the official file
formats where the official code reads them: the 431-vertex adjacency
(smpl_431_adjmat_*.pt, for the attention masks) and mesh_downsampling.npz (A, U, D sparse
matrices, for the 431 -> 1723 -> 6890 upsampling). No SMPL file is read or written.

Inputs: every .jpg/.png in --images (sorted), preprocessed as the official demo does
(engine.body.pointhmr.demo_input reproduces its torchvision transform; when torchvision is
importable the two are compared). Outputs, in --out:
  meta.json           seed, rule, versions, the official state_dict layout (keys, shapes),
                      the images (name, sha256), what each file holds
  inputs.npy          (B, 3, 224, 224) float32 (left out with --no-inputs: then the test
                      rebuilds them from the named images, e.g. ../shared/media)
  outputs.npz         cam, joints, vertices_coarse / _mid / _full, heatmap channels,
                      backbone feature statistics (per-channel mean and std)
  bn_statistics.npz   the calibrated running_mean / running_var by state_dict key
  mesh_downsampling.npz, smpl_431_adjmat_{indices,values,size}.pt   the stand-ins
Outputs are computed on the CPU with one torch thread, in float32.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

log = logging.getLogger("make_pointhmr_reference")
HEATMAP_CHANNELS = (0, 107, 215, 322, 430)
DATA = Path("src/modeling/data")


def official_defaults(official: Path) -> dict[str, object]:
    """The argument defaults of the official inference script's parse_args, read from its
    source (importing it would pull in its renderer and dataset code)."""
    tree = ast.parse((official / "src/tools/run_phmr_bodymesh_inference.py").read_text())
    defaults: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            names = [a.value for a in node.args if isinstance(a, ast.Constant)]
            kw = {k.arg: k.value for k in node.keywords}
            dest = next((n for n in names if n.startswith("--")), names[0]).lstrip("-").replace("-", "_")
            if "default" in kw:
                defaults[dest] = ast.literal_eval(kw["default"])
            elif isinstance(kw.get("action"), ast.Constant) and kw["action"].value == "store_true":
                defaults[dest] = False
    return defaults


def standin_mesh(seed: int):
    """Seeded stand-ins of SMPL's mesh hierarchy: 6890 points on a sphere, nested subsets of
    1723 and 431; k-nearest-neighbour adjacencies (A), selection downsamplings (D) and
    3-nearest barycentric-like upsamplings (U), as scipy sparse CSC matrices."""
    import scipy.sparse as sp
    from scipy.spatial import cKDTree

    rng = np.random.default_rng([seed, 431])
    pts = rng.standard_normal((6890, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    keep_mid = np.sort(rng.choice(6890, 1723, replace=False))
    keep_coarse = np.sort(rng.choice(1723, 431, replace=False))
    levels = [pts, pts[keep_mid], pts[keep_mid][keep_coarse]]

    def adjacency(p: np.ndarray, k: int = 6):
        _, nn = cKDTree(p).query(p, k + 1)
        rows = np.repeat(np.arange(len(p)), k)
        a = sp.coo_matrix((np.ones(len(rows)), (rows, nn[:, 1:].ravel())), shape=(len(p), len(p)))
        a = ((a + a.T) > 0).astype(np.float64)
        return sp.csc_matrix(a)

    def upsample(fine: np.ndarray, coarse: np.ndarray):
        _, nn = cKDTree(coarse).query(fine, 3)
        w = rng.dirichlet(np.ones(3), len(fine))
        rows = np.repeat(np.arange(len(fine)), 3)
        return sp.csc_matrix((w.ravel(), (rows, nn.ravel())), shape=(len(fine), len(coarse)))

    def selection(index: np.ndarray, n: int):
        return sp.csc_matrix((np.ones(len(index)), (np.arange(len(index)), index)), shape=(len(index), n))

    A = [adjacency(p) for p in levels]
    U = [upsample(levels[0], levels[1]), upsample(levels[1], levels[2])]
    D = [selection(keep_mid, 6890), selection(keep_coarse, 1723)]
    return A, U, D


def object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def write_standins(seed: int, data_dir: Path) -> None:
    """The official files, in the official formats, with stand-in contents."""
    import scipy.sparse as sp
    import torch

    A, U, D = standin_mesh(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(data_dir / "mesh_downsampling.npz", A=object_array(A), U=object_array(U), D=object_array(D))
    # As the official smpl_431_adjmat_*.pt: the 431-level adjacency with self-loops,
    # row-normalised (values 1 / neighbours), as COO indices, values and size.
    a = sp.coo_matrix(A[2] + sp.eye(431))
    a = sp.coo_matrix(sp.diags(1.0 / np.asarray(a.sum(axis=1)).ravel()) @ a)
    torch.save(torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64)), data_dir / "smpl_431_adjmat_indices.pt")
    torch.save(torch.from_numpy(a.data.astype(np.float32)), data_dir / "smpl_431_adjmat_values.pt")
    torch.save(torch.Size([431, 431]), data_dir / "smpl_431_adjmat_size.pt")


def install_torchvision_standin() -> str:
    """network.py imports torchvision.transforms and never uses it. The PyPI torchvision
    wheels here do not import beside the CPU torch, so an empty module stands in."""
    try:
        import torchvision.transforms  # noqa: F401
        return "torchvision " + sys.modules["torchvision"].__version__
    except Exception:  # any import failure (missing, or a wheel that cannot load)
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        tv = types.ModuleType("torchvision")
        tv.transforms = types.ModuleType("torchvision.transforms")
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tv.transforms
        return "stand-in (empty torchvision.transforms; imported by network.py, never used)"


def check_against_torchvision(images: list[Path], inputs: np.ndarray) -> str:
    try:
        from PIL import Image
        from torchvision import transforms
        t = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor(),
                                transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    except Exception as exc:  # the stand-in has no Compose
        return f"not compared (torchvision unavailable: {type(exc).__name__})"
    worst = max(float(np.abs(t(Image.open(p).convert("RGB")).numpy() - x).max()) for p, x in zip(images, inputs))
    return f"max |difference| to torchvision's transform: {worst:.2e}"


def calibrate_batchnorm(model, inputs) -> None:
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one batch -> its statistics
        bn.train()
    with torch.no_grad():
        model(inputs)
    for bn in bns:
        bn.running_mean.copy_(bn.running_mean.half().float())
        bn.running_var.copy_(bn.running_var.half().float())
        bn.num_batches_tracked.zero_()
    model.eval()


def git_commit(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="checkout of DCVL-3D/PointHMR_release")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--images", type=Path, required=True, help="folder of .jpg/.png, or one image")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-inputs", action="store_true", help="name the images instead of storing inputs.npy")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    official = args.official.resolve()
    if not (official / "src/modeling/model/network.py").is_file():
        log.error("%s is not a PointHMR_release checkout (no src/modeling/model/network.py)", official)
        return 2
    images = [args.images] if args.images.is_file() else sorted(
        p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        log.error("no .jpg/.png images in %s", args.images)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    import torch
    from engine.body.pointhmr import demo_input
    from engine.nets.seeded import RULE_VERSION, seeded_state_dict

    torch.set_num_threads(1)
    torchvision_note = install_torchvision_standin()
    inputs_np = np.stack([demo_input(p) for p in images])
    transform_note = check_against_torchvision(images, inputs_np)
    inputs = torch.from_numpy(inputs_np)

    with tempfile.TemporaryDirectory(prefix="pointhmr-ref-") as scratch:
        write_standins(args.seed, Path(scratch) / DATA)
        # The official code opens its data files relative to the working directory.
        cwd = os.getcwd()
        os.chdir(scratch)
        sys.path.insert(0, str(official))
        try:
            from src.modeling._smpl import Mesh, get_graph_params
            from src.modeling.model.network import PointHMR

            defaults = official_defaults(official)
            defaults["device"] = torch.device("cpu")
            mesh = object.__new__(Mesh)  # Mesh() would also load SMPL for vertices the forward never uses
            mesh._A, mesh._U, mesh._D = get_graph_params(filename=str(DATA / "mesh_downsampling.npz"), nsize=1)
            mesh.num_downsampling = 1
            model = PointHMR(argparse.Namespace(**defaults), mesh)
        finally:
            os.chdir(cwd)
        model.load_state_dict(seeded_state_dict(model.state_dict(), args.seed), strict=True)
        calibrate_batchnorm(model, inputs)
        features = {}
        hook = model.backbone.register_forward_hook(lambda m, i, o: features.update(x=o[0], x2=o[1]))
        with torch.no_grad():
            cam, joints, coarse, mid, full, heat = model(inputs)
        hook.remove()
        for name in ("mesh_downsampling.npz", "smpl_431_adjmat_indices.pt", "smpl_431_adjmat_values.pt",
                     "smpl_431_adjmat_size.pt"):
            (out / name).write_bytes((Path(scratch) / DATA / name).read_bytes())

    state = model.state_dict()
    np.savez_compressed(out / "bn_statistics.npz", **{k: v.numpy() for k, v in state.items()
                                                     if k.endswith(("running_mean", "running_var"))})
    outputs = {"cam": cam, "joints": joints, "vertices_coarse": coarse, "vertices_mid": mid, "vertices_full": full,
               "heatmap_channels": heat[:, list(HEATMAP_CHANNELS)]}
    for name, f in features.items():
        outputs[f"backbone_{name}_mean"] = f.mean(dim=(2, 3))
        outputs[f"backbone_{name}_std"] = f.std(dim=(2, 3))
    np.savez_compressed(out / "outputs.npz", **{k: v.numpy().astype(np.float32) for k, v in outputs.items()})
    if args.no_inputs:
        (out / "inputs.npy").unlink(missing_ok=True)
    else:
        np.save(out / "inputs.npy", inputs_np)
    meta = {
        "tool": "tools/make_pointhmr_reference.py", "seed": args.seed, "weight_rule": f"engine.nets.seeded v{RULE_VERSION}",
        "bn_calibration": "BatchNorm running statistics from one no-grad forward of the inputs in training mode "
                          "(momentum None), rounded to float16: bn_statistics.npz",
        "official": {"path": str(official), "commit": git_commit(official), "args": {k: str(v) for k, v in defaults.items()}},
        "images": [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in images],
        "inputs": "names only: rebuild with engine.body.pointhmr.demo_input" if args.no_inputs else "inputs.npy",
        "preprocessing": f"engine.body.pointhmr.demo_input; {transform_note}",
        "heatmap_channels": list(HEATMAP_CHANNELS),
        "layout": {k: list(v.shape) for k, v in state.items()},
        "environment": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
                        "torchvision": torchvision_note, "threads": 1, "device": "cpu"},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    log.info("reference for %d image(s), seed %d, written to %s", len(images), args.seed, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
