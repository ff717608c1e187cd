"""What a stored run depends on besides its parameters: the code, the data, torch, the threads.

The results key (:meth:`paperlib.serving.config.RunConfig.key`) hashes the run's parameters together
with :func:`key_context`, so a cached run is served only to the same

- **code**: :func:`code_hash`, a sha256 over the relative path and the bytes of every
  ``paperlib/**/*.py`` file that can change a run's numbers: all but the reproduction layer
  ``paperlib/repro/`` (grids, figures, tables, notebooks, benchmarks, sweeps), which only
  schedules runs and draws them (sorted by path; computed once per process). It depends on file
  contents only, not on git: a fresh clone, a tarball or a copy of the package give the same
  hash, and any edit (even a comment) of a hashed file gives a new one. The git revision is recorded next to it
  (``env.json``) for humans, but is not part of the key.
- **data**: :func:`data_identity`, the expected checksums of the source files of the dataset
  variant that :func:`paperlib.data.datasets.load_dataset` will use, found without loading the data
  (the canonical CIFAR-10 and its lossy JPEG copy have different checksums, hence different
  keys).
- **torch version** and, on CPU, the **intra-op thread count** (:func:`run_threads`): CPU
  kernels reduce in a thread-count-dependent order, so the same run with 1 and 2 threads
  differs in the last bits and, after a few thousand steps, in the third decimal.

Every run pins its thread count with :func:`pin_threads` (``$PAPERLIB_THREADS``, default 1),
whatever the parallelism of ``make``, so serial and ``make -j`` reproductions are identical.

>>> len(code_hash()), code_hash() == code_hash()
(16, True)
>>> data_identity("digits")["variant"]
'bundled'
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent
ENV_THREADS = "PAPERLIB_THREADS"
DEFAULT_THREADS = 1


#: Sub-packages of ``paperlib`` left out of :func:`code_hash`: they schedule, draw and report
#: runs, but a run's numbers do not depend on them.
UNHASHED = ("repro",)


def hash_package(package_dir: str | Path) -> str:
    """sha256 (16 hex digits) over ``relative path NUL bytes NUL`` of every ``*.py`` file under
    ``package_dir`` except those in :data:`UNHASHED` sub-packages, sorted by relative path
    (POSIX separators)."""
    root = Path(package_dir)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if "__pycache__" in path.parts or rel.parts[0] in UNHASHED:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.cache
def code_hash() -> str:
    """The hash of this process's ``paperlib`` package code (see :func:`hash_package`)."""
    return hash_package(PACKAGE_DIR)


def run_threads() -> int:
    """Intra-op threads every run uses: ``$PAPERLIB_THREADS`` (a positive int), else 1."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"{ENV_THREADS} must be a positive integer, got {raw!r}") from None
    return n


def pin_threads() -> int:
    """Set torch's intra-op thread count to :func:`run_threads`; return it."""
    import torch

    n = run_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def data_identity(dataset: str) -> dict[str, Any]:
    """Which source files the dataset will be loaded from, without loading it: the variant
    ``load_dataset`` picks (decoded cache first, then files in the root or the mirror, else the
    first downloadable variant, in the loader's order), its lossy flag and the expected
    checksums ``{file: sha256 or md5}`` of its files. ``digits`` (bundled with scikit-learn):
    the scikit-learn version."""
    from paperlib.data import datasets as ds

    spec = ds._spec(dataset)
    if spec.bundled is not None:
        import sklearn

        return {"variant": "bundled", "lossy": False, "scikit_learn": sklearn.__version__}
    root, mirror = ds.resolve_root(), ds.resolve_mirror()
    chosen = next((v for v in spec.variants if ds._cache_path(spec, v, root).is_file()), None)
    if chosen is None:
        chosen = next((v for v in spec.variants
                       if len(ds._locate(spec, v, root, mirror)[0]) == len(v.files)), None)
    if chosen is None:
        chosen = next((v for v in spec.variants if v.downloadable), spec.variants[0])
    return {"variant": chosen.tag, "lossy": bool(chosen.lossy),
            "checksums": {f.name: f.sha256 or f.md5 for f in chosen.files}}


def key_context(dataset: str, device: str) -> dict[str, Any]:
    """Everything besides the parameters that the results key hashes (see the module doc)."""
    import torch

    ctx: dict[str, Any] = {"code": code_hash(), "data": data_identity(dataset),
                           "torch": torch.__version__}
    if device == "cpu":
        ctx["threads"] = run_threads()
    return ctx


def code_versions(rows: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Distinct ``{"code_hash", "git_revision"}`` pairs of summary rows, in first-seen order
    (rows without a code hash, i.e. runs stored before it was recorded, count as 'unknown')."""
    seen: dict[tuple[str, str], None] = {}
    for r in rows:
        seen[(str(r.get("code_hash") or "unknown"), str(r.get("git_revision") or "unknown"))] = None
    return [{"code_hash": c, "git_revision": g} for c, g in seen]


class MixedCodeError(ValueError):
    """A report would combine runs made by different versions of the code."""


def check_single_code(rows: Iterable[dict[str, Any]], allow_mixed: bool = False) -> list[str]:
    """The distinct code hashes of ``rows``; raise :class:`MixedCodeError` when there is more
    than one and ``allow_mixed`` is False.

    >>> check_single_code([{"code_hash": "a"}, {"code_hash": "a"}])
    ['a']
    >>> check_single_code([{"code_hash": "a"}, {"code_hash": "b"}])
    Traceback (most recent call last):
    ...
    paperlib.serving.provenance.MixedCodeError: runs of 2 code versions (a, b) ...
    """
    hashes = list(dict.fromkeys(str(r.get("code_hash") or "unknown") for r in rows))
    if len(hashes) > 1 and not allow_mixed:
        raise MixedCodeError(
            f"runs of {len(hashes)} code versions ({', '.join(hashes)}) would be mixed in one "
            "report; rerun the stale ones (make reproduce recomputes them) or pass "
            "--allow-mixed-code")
    return hashes


def describe_versions(rows: Iterable[dict[str, Any]]) -> str:
    """``code 1a2b3c4d5e6f7a8b (git bf90f647fb2d)``; several versions joined by '; '.

    >>> describe_versions([{"code_hash": "abc", "git_revision": "123"}])
    'code abc (git 123)'
    """
    return "; ".join(f"code {v['code_hash']} (git {v['git_revision']})"
                     for v in code_versions(rows))


def describe_table_versions(table: Any) -> str:
    """'code <hash(es)> (git <revision(s)>)' of the runs behind a summary table (a DataFrame
    whose ``code_hash``/``git_revision`` cells hold comma-joined distinct values)."""
    if "code_hash" not in table:
        return "runs of unrecorded code versions"

    def distinct(col: str) -> str:
        cells = [str(c) for c in table[col]] if col in table else ["unknown"]
        return ", ".join(dict.fromkeys(v for cell in cells for v in cell.split(",")))

    return f"code {distinct('code_hash')} (git {distinct('git_revision')})"
