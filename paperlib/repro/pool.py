"""Many runs at once on one device: a small process pool (spawn) for a grid of configurations.

Small models leave most of a large GPU idle, so several runs share it, each in its own process
(its own CUDA context, one CPU thread). The number of workers comes from the device's free
memory and the CPU cores (:func:`default_workers`); ``$PAPERLIB_WORKERS`` or ``workers=``
overrides it. One progress bar covers the whole grid, weighted by each run's planned steps so
that its ETA is meaningful when runs differ in size.

Results equal the same runs made one after the other (every run is seeded by its own
configuration); ``tests/test_pool.py`` checks this. Finished runs land in the results store as
usual, so an interrupted pool resumes from cache hits.

This is the stand-in until a shared executor (Dask) exists; :func:`run_pool` is its interface.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from paperlib.serving.config import RunConfig

#: Planned device memory of one paper-profile run (data, seen store, model, optimizer,
#: CUDA context); an overestimate for MNIST, about right for CIFAR-10 with all data on the GPU.
RUN_BYTES = 4 << 30


def default_workers(device: str = "auto", run_bytes: int = RUN_BYTES) -> int:
    """``$PAPERLIB_WORKERS`` if set, else on CUDA ``min(CPU cores, 80% of free memory /
    run_bytes)``, else the CPU cores (one thread each)."""
    env = os.environ.get("PAPERLIB_WORKERS")
    if env:
        return max(1, int(env))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    import torch

    if device in ("auto", "cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return max(1, min(cores, int(0.8 * free) // run_bytes))
    return cores


def _init_worker(threads: int, env: dict[str, str]) -> None:
    os.environ.update(env)
    import torch

    torch.set_num_threads(threads)
    from paperlib.engine.determinism import configure

    configure()


def _run_one(cfg: RunConfig, kw: dict[str, Any]) -> Any:
    from paperlib.serving.runner import run

    return run(cfg, **kw)


def run_pool(configs: Sequence[RunConfig], workers: int | None = None, *, threads: int = 1,
             weights: Sequence[float] | None = None, progress: bool = True,
             on_result: Callable[[int, Any], None] | None = None, **kw: Any) -> list[Any]:
    """Run every configuration in ``workers`` spawned processes; return the
    :class:`~paperlib.serving.runner.RunResult` objects in the order of ``configs``.

    Duplicate configurations run once. ``kw`` goes to :func:`paperlib.serving.runner.run` (``store``,
    ``results``, ``force``). ``weights`` (e.g. planned steps) size the progress bar.
    ``workers=1`` runs in this process, serially.
    """
    from paperlib.progress import progress_bar

    configs = list(configs)
    workers = default_workers(configs[0].device if configs else "auto") if workers is None \
        else workers
    if "results" in kw and kw["results"] is not None:
        kw["results"] = str(Path(kw["results"]))
    unique: dict[str, int] = {}
    for i, c in enumerate(configs):
        unique.setdefault(c.key("any"), i)
    w = list(weights) if weights is not None else [1.0] * len(configs)
    bar = progress_bar(None, total=sum(w[i] for i in unique.values()), disable=not progress,
                       unit="step", unit_scale=True, desc=f"{len(unique)} runs, {workers} workers")
    done: dict[int, Any] = {}
    try:
        if workers <= 1:
            for i in unique.values():
                done[i] = _run_one(configs[i], kw)
                bar.update(w[i])
                if on_result:
                    on_result(i, done[i])
        else:
            env = {k: v for k, v in os.environ.items() if k.startswith("PAPERLIB_")}
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                     initializer=_init_worker, initargs=(threads, env)) as ex:
                futures = {ex.submit(_run_one, configs[i], kw): i for i in unique.values()}
                for fut in as_completed(futures):
                    i = futures[fut]
                    done[i] = fut.result()
                    bar.update(w[i])
                    if on_result:
                        on_result(i, done[i])
    finally:
        bar.close()
    return [done[unique[c.key("any")]] for c in configs]
