"""The results store: one folder per run configuration, written atomically.

Layout of ``<root>/<method>-<dataset>-<scenario>-s<seed>-<key>/``::

    rounds.csv        one row per round: every metric and cost (see paperlib.engine.metrics.RoundRecord)
    summary.json      the run's headline numbers (see paperlib.serving.runner.summarize)
    config.json       the full resolved configuration
    env.json          package versions, device, threads, seed, code hash, git revision, wall time
    sample_arms.csv   (bandit methods) per-round pulls / probabilities of each data arm
    sample_trace.csv  (bandit methods) arm probabilities every few steps
    weight_groups.csv (weight-bandit methods) which parameter groups trained when

``key`` hashes every parameter and the code, data, torch and thread context
(:meth:`paperlib.serving.config.RunConfig.key`, :mod:`paperlib.serving.provenance`), so changing any
parameter or any ``paperlib/**/*.py`` file makes a new folder, and rerunning the same configuration finds the old one (a cache
hit). The folder is assembled under a temporary name and renamed into place, so an interrupted
run leaves nothing that looks finished, and a finished run is never rewritten unless forced.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Paths whose uncommitted changes mark a run's git revision "+dirty".
CODE_PATHS = ("paperlib", "notebooks", "pyproject.toml", "constraints.txt", "Makefile",
              "reproduce.mk")
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


def results_root() -> Path:
    """``$PAPERLIB_RESULTS``, else ``<repo>/results`` for a source checkout, else ``./results``."""
    env = os.environ.get("PAPERLIB_RESULTS")
    if env:
        return Path(env)
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / "results"
    return Path.cwd() / "results"


def run_dir_name(params: dict[str, Any], key: str) -> str:
    return f"{params['method']}-{params['dataset']}-{params['scenario']}-s{params['seed']}-{key}"


def find_run(root: Path, params: dict[str, Any], key: str) -> Path | None:
    """The finished run folder for this configuration, or None."""
    path = root / run_dir_name(params, key)
    return path if (path / "summary.json").exists() else None


def git_revision() -> str:
    """``git describe``-like revision of the checkout (``+dirty`` when modified), or 'unknown'."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        # Only files that can change a result count; generated outputs (figures/, README.md)
        # being rewritten by the reproduction itself does not make the code dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                *CODE_PATHS], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout
        return rev + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_record(device: str, seed: int) -> dict[str, Any]:
    """Versions and hardware that produced a run."""
    import numpy
    import sklearn
    import torch

    from paperlib.version import __version__

    rec: dict[str, Any] = {
        "paperlib": __version__, "git_revision": git_revision(), "python": sys.version.split()[0],
        "torch": torch.__version__, "numpy": numpy.__version__, "pandas": pd.__version__,
        "scikit_learn": sklearn.__version__, "platform": platform.platform(),
        "processor": platform.machine(), "cpu_threads": torch.get_num_threads(),
        "device": device, "seed": seed,
    }
    if device == "cuda":
        rec["cuda_device"] = torch.cuda.get_device_name(0)
        rec["cuda_version"] = torch.version.cuda
    return rec


def _temp_prefix(name: str) -> str:
    """``.tmp-<host>-<pid>-<name>-``: whose temporary folder it is (see :func:`clean_stale_temps`)."""
    return f".tmp-{_HOST}-{os.getpid()}-{name}-"


def clean_stale_temps(root: Path) -> list[Path]:
    """Remove the temporary folders that processes of this host left behind when they died
    mid-write (a killed worker, Ctrl-C); folders of live processes and other hosts stay."""
    removed = []
    for path in root.glob(".tmp-*") if root.is_dir() else []:
        m = re.match(r"\.tmp-([A-Za-z0-9_]+)-(\d+)-", path.name)
        if m is None or m.group(1) != _HOST or _alive(int(m.group(2))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_run(root: Path, name: str, tables: dict[str, pd.DataFrame], records: dict[str, Any],
              force: bool = False) -> Path:
    """Write ``tables`` (csv) and ``records`` (json) into ``root/name`` atomically.

    Safe when several processes finish the same run at once: exactly one complete folder
    stays (the first one renamed into place; with ``force`` the last one) and no one fails.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(name), dir=root))
    try:
        for fname, df in tables.items():
            df.to_csv(tmp / f"{fname}.csv", index=False)
        for fname, obj in records.items():
            (tmp / f"{fname}.json").write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        if force and final.exists():
            old = root / f".old-{_HOST}-{os.getpid()}-{name}"
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first
                final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(final)  # atomic; fails on an existing non-empty folder (Linux)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not final.is_dir():
                raise
            shutil.rmtree(tmp)  # another process stored the same run first: keep theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_run(path: Path) -> dict[str, Any]:
    """Load a stored run: ``{"summary", "config", "env", <table name>: DataFrame}``."""
    out: dict[str, Any] = {}
    for f in path.iterdir():
        if f.suffix == ".json":
            out[f.stem] = json.loads(f.read_text())
        elif f.suffix == ".csv":
            out[f.stem] = pd.read_csv(f)
    return out
