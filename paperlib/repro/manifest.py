"""The figure/table manifest: ``<figures>/MANIFEST.json`` says, for every figure and table,
which notebook and parameters made it, the git revision, the data checksums, the runs used and
their run time, the notebook's wall time and the device. Notebooks run in parallel under
``make -j``, so every update is a locked read-modify-write replaced atomically.

Below :mod:`paperlib.repro.plots` (which records every saved figure) and :mod:`paperlib.repro.report`
(tables; it re-exports this module's functions).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from paperlib.serving.provenance import code_versions
from paperlib.serving.store import git_revision

if TYPE_CHECKING:
    from paperlib.repro.gridrun import GridResult

MANIFEST = "MANIFEST.json"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the directory itself (no lock file left behind)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_manifest(figures_dir: str | Path) -> dict[str, Any]:
    """The manifest (``{"figures": {...}, "tables": {...}}``); empty sections when absent."""
    path = Path(figures_dir) / MANIFEST
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault("figures", {})
    data.setdefault("tables", {})
    return data


def update_manifest(figures_dir: str | Path, kind: str, name: str, entry: dict[str, Any]) -> None:
    """Merge ``entry`` as ``manifest[kind][name]`` under an exclusive lock, then replace the
    file atomically (safe with notebooks running in parallel)."""
    figures_dir = Path(figures_dir)
    with _locked(figures_dir):
        data = read_manifest(figures_dir)
        data.setdefault(kind, {})[name] = entry
        data = {k: dict(sorted(v.items())) if isinstance(v, dict) else v
                for k, v in sorted(data.items())}
        _atomic_write(figures_dir / MANIFEST,
                      json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_provenance(grid: GridResult | None, summaries: pd.DataFrame | None) -> dict[str, Any]:
    """Runs used, their summed run time, data checksums and device, from the run folders."""
    dirs: list[Path] = []
    if grid is not None:
        dirs = [r.path for r in grid.runs if r.path is not None]
    elif summaries is not None and "run_dir" in summaries:
        dirs = [Path(p) for p in summaries["run_dir"].dropna()]
    dirs = list(dict.fromkeys(dirs))
    data: dict[str, Any] = {}
    devices: list[str] = []
    run_seconds = 0.0
    for d in dirs:
        cfg = _read_json(d / "config.json")
        env = _read_json(d / "env.json")
        meta = cfg.get("data") or {}
        if meta:
            data.setdefault(meta.get("name", cfg.get("dataset", "?")), {
                "source": meta.get("source"), "lossy": meta.get("lossy"),
                "checksums": meta.get("checksums", {})})
        run_seconds += float(env.get("run_seconds", 0.0) or 0.0)
        dev = env.get("device", "?")
        if env.get("cuda_device"):
            dev += f" ({env['cuda_device']})"
        else:
            dev += f" ({env.get('processor', '?')}, {env.get('cpu_threads', '?')} threads)"
        devices.append(dev)
    if grid is not None and not dirs:  # unstored runs: checksums straight from the loaders
        from paperlib.data.datasets import load_dataset

        for ds in dict.fromkeys(r.config.dataset for r in grid.runs):
            with contextlib.suppress(Exception):
                meta = load_dataset(ds).meta
                data[ds] = {"source": meta["source"], "lossy": meta["lossy"],
                            "checksums": meta["checksums"]}
        run_seconds = sum(float(r.env.get("run_seconds", 0.0)) for r in grid.runs)
        devices = [str(r.env.get("device", "?")) for r in grid.runs]
    summary_rows = [_read_json(d / "summary.json") for d in dirs]
    if grid is not None and not dirs:
        summary_rows = [r.summary for r in grid.runs]
    roots = sorted({str(d.parent) for d in dirs})
    versions = code_versions(summary_rows)
    out = {"git_revision": ", ".join(dict.fromkeys(v["git_revision"] for v in versions)),
           "code_versions": versions,
           "runs": [d.name for d in dirs], "results_root": roots[0] if len(roots) == 1 else roots,
           "run_seconds_total": round(run_seconds, 3), "data": data,
           "device": sorted(set(devices)),
           "threads": sorted({int(r["threads"]) for r in summary_rows if r.get("threads")})}
    if grid is not None:  # how many of the runs this notebook execution found in the cache
        out["runs_cached"] = sum(bool(r.cached) for r in grid.runs)
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def record_manifest_entry(figures_dir: str | Path, kind: str, name: str, *,
                          files: Sequence[Path], caption: str, notebook: str,
                          params: Mapping[str, Any], grid: GridResult | None = None,
                          wall_seconds: float | None = None, footnote: str = "",
                          summaries: pd.DataFrame | None = None) -> dict[str, Any]:
    """Record a figure (``kind="figures"``) or table (``"tables"``) in the manifest."""
    figures_dir = Path(figures_dir)
    entry: dict[str, Any] = {
        "files": {str(Path(f).resolve().relative_to(figures_dir.resolve())): _sha256(Path(f))
                  for f in files},
        "caption": caption,
        "footnote": footnote,
        "notebook": notebook,
        "parameters": json.loads(json.dumps(dict(params), default=str)),
        **_run_provenance(grid, summaries),
        "written_at_git_revision": git_revision(),
        "notebook_wall_seconds": None if wall_seconds is None else round(wall_seconds, 3),
    }
    update_manifest(figures_dir, kind, name, entry)
    return entry
