"""The paper profile of every notebook on one GPU: run the grids, render the figures, pack.

``make gpu-check`` (``scripts/gpu_check.sh``) on a fresh machine with one NVIDIA GPU, offline:

1. runs every notebook's grid (:func:`paperlib.repro.plan.notebook_grids`) in a pool of concurrent
   worker processes on the one GPU (:mod:`paperlib.repro.pool`; N from the device memory and the CPU
   cores, ``--workers`` overrides), largest runs first, with one progress bar and an ETA;
2. renders the notebooks from the stored runs (cache hits): with papermill when it is
   importable (e.g. from the wheel bundle), else by executing each notebook's code cells in this
   process (no Jupyter needed), writing ``figures/paper/``;
3. writes ``figures/paper/GPU_CHECK.json``: the device, the numeric policy, workers, and per
   notebook its runs, steps, FLOPs, summed run seconds and render seconds, and the totals;
4. packs the runs, the figures and that manifest into ``.tar.gz`` parts of at most 16 MiB
   (at most 8 parts) in ``--out``.

``--smoke`` is the CPU dry run of the same code path (smoke profile, CPU, seed 0); ``make test``
runs it on two notebooks (``tests/test_gpu_check.py``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paperlib.repro.plan import NOTEBOOK_TARGETS, notebook_grids, plan_grid
from paperlib.spec import ConfigError

REPO = Path(__file__).resolve().parent.parent.parent
PART_BYTES = 16 << 20
MAX_PARTS = 8


def notebook_source(target: str) -> tuple[Path, dict[str, Any]]:
    """The notebook file of a ``reproduce.mk`` target and its extra parameters (``dataset``)."""
    for stem in ("02_class_incremental", "04_real_streams"):
        if target.startswith(stem + "_"):
            return REPO / "notebooks" / f"{stem}.ipynb", {"dataset": target[len(stem) + 1:]}
    return REPO / "notebooks" / f"{target}.ipynb", {}


def cifar10_overrides(root: str | Path | None) -> dict[str, int]:
    """``max_train``/``max_test`` of a CIFAR-10 subset bundle found in the data ``root`` (so the
    run key and the manifest name the subset); ``{}`` for the full data."""
    import numpy as np

    if root is None:
        return {}
    for path in Path(root).glob("cifar10/*.npz"):
        with np.load(path, allow_pickle=False) as z:
            if "subset" in json.loads(str(z["info"][()])).get("source", ""):
                return {"max_train": int(len(z["y_train"])), "max_test": int(len(z["y_test"]))}
    return {}


def exec_notebook(path: Path, params: Mapping[str, Any], cwd: Path) -> None:
    """Execute a notebook's code cells in one namespace, with ``params`` injected after its
    ``parameters`` cell (what papermill does, without a Jupyter kernel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    ns: dict[str, Any] = {"__name__": "__main__"}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        for i, cell in enumerate(cells):
            src = "".join(cell["source"])
            exec(compile(src, f"{path.name}[{i}]", "exec"), ns)  # noqa: S102 - our notebooks
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                ns.update(params)
            plt.close("all")
    finally:
        os.chdir(old)


def render(target: str, params: Mapping[str, Any], renderer: str, executed: Path) -> str:
    """Render one notebook target; return the renderer used ("papermill" or "exec")."""
    path, extra = notebook_source(target)
    params = {**params, **extra}
    if renderer in ("auto", "papermill"):
        try:
            import papermill  # noqa: F401

            from paperlib.repro.notebooks import execute

            execute(path, executed / f"{target}.ipynb", params, cwd=REPO / "notebooks")
            return "papermill"
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - no papermill, or no Jupyter kernel
            if renderer == "papermill":
                raise
            print(f"gpu_check: papermill unavailable for {target} ({type(exc).__name__}: {exc}); "
                  f"executing the notebook's cells directly")
    exec_notebook(path, params, REPO / "notebooks")
    return "exec"


def pack(files: Sequence[Path], out: Path, name: str, base: Path) -> list[Path]:
    """``tar.gz`` of ``files`` (paths relative to ``base``) split into parts of at most
    :data:`PART_BYTES`; ``cat name.tar.gz.part* | tar xz`` unpacks it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in files:
            tar.add(f, arcname=str(f.resolve().relative_to(base.resolve())))
    data = buf.getvalue()
    n = max(1, -(-len(data) // PART_BYTES))
    if n > MAX_PARTS:
        raise RuntimeError(f"the archive is {len(data) >> 20} MiB: more than {MAX_PARTS} parts "
                           f"of {PART_BYTES >> 20} MiB")
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(n):
        part = out / f"{name}.tar.gz.part{i:02d}"
        part.write_bytes(data[i * PART_BYTES:(i + 1) * PART_BYTES])
        parts.append(part)
    return parts


def device_record() -> dict[str, Any]:
    import torch

    from paperlib.engine.determinism import configure

    rec = {"torch": torch.__version__, "python": platform.python_version(),
           "cpu_cores": os.cpu_count(), "policy": configure()}
    if torch.cuda.is_available():
        rec |= {"device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda,
                "device_memory_bytes": torch.cuda.get_device_properties(0).total_memory}
    else:
        rec |= {"device": f"cpu ({platform.processor() or platform.machine()})"}
    return rec


def main(argv: Sequence[str] | None = None) -> int:
    from paperlib.repro.experiments import parse_list
    from paperlib.repro.pool import default_workers, run_pool

    ap = argparse.ArgumentParser(prog="python -m paperlib.repro.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="CPU dry run: smoke profile, seed 0")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--seeds", help="default: the profile's")
    ap.add_argument("--notebooks", help="comma-separated targets (default: all)")
    ap.add_argument("--methods", help="restrict every grid to these methods")
    ap.add_argument("--workers", type=int, help="concurrent runs (default: from memory and cores)")
    ap.add_argument("--data", help="data root, e.g. gpu_bundle/data-main (decoded arrays)")
    ap.add_argument("--results", default=None, help="results store (default: results/)")
    ap.add_argument("--figures-dir", default=str(REPO / "figures" / "paper"))
    ap.add_argument("--renderer", choices=("auto", "papermill", "exec", "none"), default="auto")
    ap.add_argument("--out", default=os.environ.get("OUT", str(REPO / "gpu_out")),
                    help="where the archive parts go (default: $OUT, else gpu_out/)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    profile, device = ("smoke", "cpu") if args.smoke else (args.profile, "auto")
    if args.data:
        os.environ["PAPERLIB_DATA_ROOT"] = str(Path(args.data).resolve())
        os.environ["PAPERLIB_DATA_MIRROR"] = os.environ.get("PAPERLIB_DATA_MIRROR", "")
    if args.results:
        os.environ["PAPERLIB_RESULTS"] = str(Path(args.results).resolve())
    seeds = parse_list(args.seeds, int) or ([0] if args.smoke else None)
    methods = parse_list(args.methods)
    targets = parse_list(args.notebooks) or list(NOTEBOOK_TARGETS)
    cifar = cifar10_overrides(os.environ.get("PAPERLIB_DATA_ROOT"))
    overrides = {"02_class_incremental_cifar10": cifar} if cifar else {}
    grids = notebook_grids(profile, seeds, targets, device, overrides)
    if methods:
        grids = {n: [c for c in cs if c.method in methods] for n, cs in grids.items()}
    from paperlib.data.datasets import available_offline

    skipped = [n for n, cs in grids.items() if any(not available_offline(c.dataset) for c in cs)]
    for n in skipped:  # e.g. CIFAR-10 travels in its own device call (paperlib.repro.bundle)
        print(f"gpu_check: skipping {n}: its data is not in the data root (see --data)")
        del grids[n]
    configs = [c for cs in grids.values() for c in cs]
    plans = {c.key("x"): p for c, p in zip(configs, plan_grid(configs), strict=True)}
    order = sorted(range(len(configs)), key=lambda i: -plans[configs[i].key("x")].total_steps)
    workers = args.workers or (2 if args.smoke else default_workers(device))
    env = device_record() | {"workers": workers, "profile": profile, "cifar10_subset": cifar,
                             "skipped_notebooks": skipped}
    print(f"== {len(configs)} runs ({len(plans)} distinct) on {env['device']}, {workers} workers")
    finished: dict[str, float] = {}
    t_grid = time.perf_counter()

    def done(i: int, result: Any) -> None:
        finished[configs[order[i]].key("x")] = time.perf_counter() - t_grid

    results = run_pool([configs[i] for i in order], workers,
                       weights=[plans[configs[i].key("x")].total_steps for i in order],
                       on_result=done, store=True)
    grid_seconds = time.perf_counter() - t_grid
    by_key = {configs[i].key("x"): r for i, r in zip(order, results, strict=True)}
    figures = Path(args.figures_dir).resolve()
    executed = REPO / "notebooks" / "executed" / profile
    rows = {}
    for name, cs in grids.items():
        keys = [c.key("x") for c in cs]
        row = {"runs": len(cs), "steps": sum(plans[k].total_steps for k in keys),
               "train_flops": sum(plans[k].total_flops for k in keys),
               "run_seconds": sum(float(by_key[k].env.get("run_seconds", 0.0)) for k in keys),
               "grid_done_at_seconds": max((finished.get(k, 0.0) for k in keys), default=0.0)}
        if args.renderer != "none" and cs:
            nb_methods = sorted({c.method for c in cs}) if methods else None
            params = {"profile": profile, "device": device, "figures_dir": str(figures),
                      "seeds": ",".join(str(s) for s in sorted({c.seed for c in cs})),
                      "methods": ",".join(nb_methods) if nb_methods else None,
                      "overrides": json.dumps(overrides.get(name, {})) or None}
            t0 = time.perf_counter()
            row["renderer"] = render(name, params, args.renderer, executed)
            row["render_seconds"] = time.perf_counter() - t0
        rows[name] = row
        print(f"{name:<36} {row['runs']:>4} runs {row['run_seconds']:9.1f} run-s "
              f"{row.get('render_seconds', 0.0):6.1f} s render")
    total = time.perf_counter() - t_start
    manifest = {**env, "notebooks": rows, "grid_seconds": grid_seconds,
                "render_seconds": sum(r.get("render_seconds", 0.0) for r in rows.values()),
                "total_seconds": total, "runs": len(by_key)}
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "GPU_CHECK.json").write_text(json.dumps(manifest, indent=1, sort_keys=True,
                                                       default=str))
    run_dirs = sorted({Path(r.path) for r in by_key.values() if r.path is not None})
    common = Path(os.path.commonpath([REPO, *run_dirs, figures]))
    parts = pack([*run_dirs, figures], Path(args.out), f"paperlib-{profile}", common)
    print(f"== total {total:.0f} s (grid {grid_seconds:.0f} s on {workers} workers); "
          f"{len(parts)} archive part(s) in {args.out}: "
          f"{', '.join(p.name for p in parts)} (unpack: cat *.part* | tar xz -C {common})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
