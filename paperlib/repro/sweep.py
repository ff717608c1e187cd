"""Sweeps: the runs of a grid in parallel, on one machine or a Dask cluster.

Executors (``scheduler`` argument, ``--scheduler`` option or ``$PAPERLIB_SCHEDULER``):

- ``local`` (default): a Dask ``LocalCluster`` with one worker process per core and one thread
  per worker, created for the sweep and closed after it;
- ``tcp://host:8786`` (any Dask address): an existing cluster (``dask scheduler`` plus
  ``dask worker``s, or dask-jobqueue). The results store must be one shared path that every
  worker can read and write; the sweep checks it first and says which worker cannot;
- ``serial``: one run after another in this process (for debugging).

Every run goes through :func:`paperlib.serving.runner.run`, which stores it atomically in the results
store keyed by its configuration hash, so a sweep computes only what is missing, a rerun after
Ctrl-C or a crash resumes, and a worker that dies mid-run loses only that run (the scheduler
reruns it on another worker, up to ``ALLOWED_FAILURES`` times). Each worker pins
``$PAPERLIB_THREADS`` (default 1) intra-op threads, so small models do not oversubscribe cores.

>>> from paperlib.serving.config import RunConfig
>>> cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
>>> resolve_executor("serial"), resolve_executor("tcp://10.0.0.1:8786")
('serial', 'tcp://10.0.0.1:8786')
>>> resolve_executor("locl")
Traceback (most recent call last):
...
paperlib.spec.ConfigError: unknown executor 'locl' (did you mean 'local'?)...
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperlib.progress import progress_bar
from paperlib.serving.config import ConfigError, RunConfig, as_jsonable, did_you_mean
from paperlib.serving.store import clean_stale_temps, find_run, results_root

SCHEDULER_ENV = "PAPERLIB_SCHEDULER"
EXECUTORS = ("local", "serial")
#: Times the scheduler reruns a task whose worker died under it before giving up on it.
ALLOWED_FAILURES = 3
#: Slow datasets/methods are started first, so the last runs of a sweep are short ones.
_COST_HINT = {"cifar10": 3, "mnist": 2, "fashion_mnist": 2, "elec2": 1, "weather": 1}
_SLOW_METHODS = ("full_retrain", "scratch", "ewc", "bandit")


class SweepError(RuntimeError):
    """The sweep cannot run: no scheduler at the address, no workers, unreachable store."""


@dataclass
class Failure:
    """A run that raised: its configuration, the error and the worker's traceback."""

    config: RunConfig
    error: str
    traceback: str

    def describe(self) -> str:
        c = self.config
        return (f"{c.method} {c.dataset}/{c.scenario} seed {c.seed} (profile {c.profile}): "
                f"{self.error}\n  config: {c.params()}\n{self.traceback}")


@dataclass
class SweepResult:
    """What a sweep did. ``cached`` runs were in the store already; ``computed`` ran now."""

    configs: list[RunConfig]
    executor: str
    cached: int = 0
    computed: int = 0
    failed: list[Failure] = field(default_factory=list)
    wall_seconds: float = 0.0
    #: sum of the computed runs' own durations (as measured by the workers)
    run_seconds: float = 0.0

    def add(self, record: Mapping[str, Any]) -> None:
        """Count a finished task's record (:func:`run_task`); a cache hit (stored meanwhile,
        or a worker's device differs from this machine's) counts as cached."""
        if record["cached"]:
            self.cached += 1
        else:
            self.computed += 1
            self.run_seconds += record["seconds"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (f"{len(self.configs)} runs on {self.executor}: {self.cached} cached, "
                f"{self.computed} computed, {len(self.failed)} failed "
                f"({self.wall_seconds:.1f} s wall, {self.run_seconds:.1f} s in runs)")

    def report(self) -> str:
        """The summary line, then every failure with its configuration and traceback."""
        lines = [self.summary()]
        for i, f in enumerate(self.failed, 1):
            lines.append(f"--- failure {i}/{len(self.failed)}: {f.describe()}")
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if self.failed:
            raise RuntimeError(self.report())


def resolve_executor(scheduler: str | None) -> str:
    """``scheduler``, else ``$PAPERLIB_SCHEDULER``, else ``local``; checked."""
    value = (scheduler or os.environ.get(SCHEDULER_ENV) or "local").strip()
    if value in EXECUTORS or "://" in value or ":" in value:
        return value
    raise ConfigError(f"unknown executor {value!r}{did_you_mean(value, list(EXECUTORS))}. Use "
                      f"'local', 'serial' or a scheduler address such as tcp://host:8786")


def config_id(cfg: RunConfig) -> str:
    """A device-independent identity of a configuration (for de-duplication)."""
    return json.dumps(as_jsonable(cfg), sort_keys=True)


def task_key(cfg: RunConfig) -> str:
    """Dask key of a run: the same configuration is one task, even across clients; one common
    prefix puts all runs in one task group, which the scheduler queues instead of assigning
    them all to workers at once."""
    return f"paperlib-run-{hashlib.sha256(config_id(cfg).encode()).hexdigest()[:20]}"


def undo_malloc_trimming() -> bool:
    """Give a Dask worker process glibc's allocation behaviour back (Linux; no-op elsewhere).

    A Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (its config
    ``distributed.nanny.pre-spawn-environ``) so they return memory to the OS quickly. Setting
    it also freezes glibc's mmap threshold at 128 KiB, so every freed training buffer (an
    activation, a gradient) goes back to the OS and the next step faults it in again: measured
    here, a quick-profile CIFAR-10 run took 1.5x as long (23 s instead of 15 s, system time 7 s
    instead of 1.3 s), and a 2-worker sweep was no faster than a serial one. This sets the mmap
    threshold to 32 MiB and the trim threshold to 256 MiB with ``mallopt``, at run time, so it
    also holds on workers started by hand (``dask worker``). Returns True when applied."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)
                    and libc.mallopt(m_trim_threshold, 256 << 20))
    except (OSError, AttributeError):
        return False


def run_task(cfg: RunConfig, results: str, force: bool = False) -> dict[str, Any]:
    """One run, as executed by a worker: pin the thread count, run and store it; returns a
    small record (the tables stay in the store)."""
    import socket

    import torch

    from paperlib.serving.runner import run

    if os.environ.get("MALLOC_TRIM_THRESHOLD_"):  # a Dask nanny's setting (see below)
        undo_malloc_trimming()

    threads = int(os.environ.get("PAPERLIB_THREADS") or 1)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result = run(cfg, results=results, force=force)
    return {"path": str(result.path), "cached": result.cached,
            "seconds": time.perf_counter() - t0, "host": socket.gethostname(), "pid": os.getpid()}


def missing_runs(configs: Sequence[RunConfig], root: Path) -> list[RunConfig]:
    """The configurations without a finished run in ``root`` (device resolved here)."""
    from paperlib.engine.models import resolve_device

    out = []
    for cfg in configs:
        key = cfg.key(resolve_device(cfg.device).type)
        if find_run(root, cfg.params(), key) is None:
            out.append(cfg)
    return out


def _priority(cfg: RunConfig) -> int:
    return 2 * _COST_HINT.get(cfg.dataset, 0) + (cfg.method in _SLOW_METHODS)


def _failure(cfg: RunConfig, exc: BaseException, tb: Any) -> Failure:
    text = "".join(traceback.format_tb(tb)) if tb is not None else ""
    return Failure(cfg, f"{type(exc).__name__}: {exc}", text)


def sweep(configs: Sequence[RunConfig], *, scheduler: str | None = None,
          workers: int | None = None, results: Path | str | None = None, force: bool = False,
          retries: int = 1, progress: bool = True, connect_timeout: float = 10.0) -> SweepResult:
    """Compute every configuration of ``configs`` that the store lacks, in parallel.

    Args:
        configs: the runs (duplicates are run once).
        scheduler: ``local``, ``serial`` or a Dask scheduler address (default: see
            :func:`resolve_executor`).
        workers: worker processes of the ``local`` cluster (default: one per core).
        results: the results root (default ``$PAPERLIB_RESULTS`` or ``results/``); with a
            remote scheduler it must be the same path on every worker.
        force: recompute even the stored runs.
        retries: reruns of a run that raised (a worker that died is handled separately).
        connect_timeout: seconds to wait for a remote scheduler and its first worker.

    Returns a :class:`SweepResult`; failed runs are listed there and do not stop the others.
    Raises :class:`SweepError` when the cluster or the store is unusable. On Ctrl-C the
    pending runs are cancelled, the cluster is closed and ``KeyboardInterrupt`` propagates;
    every finished run is stored, so a rerun computes only what is missing.
    """
    t0 = time.perf_counter()
    executor = resolve_executor(scheduler)
    root = Path(results if results is not None else results_root()).absolute()
    unique = list({config_id(c): c for c in configs}.values())
    todo = unique if force else missing_runs(unique, root)
    res = SweepResult(unique, executor, cached=len(unique) - len(todo))
    if progress:
        print(f"sweep: {len(unique)} runs, {res.cached} already stored in {root}, "
              f"{len(todo)} to compute on {executor}", file=sys.stderr)
    if todo:
        # Runs of one dataset, scenario and seed next to each other (then by cost class), so a
        # worker reuses their shared first model (paperlib.serving.runner._first_model).
        todo.sort(key=lambda c: (c.dataset, c.scenario, c.profile, c.seed, c.method))
        todo.sort(key=_priority, reverse=True)
        root.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(root)
        bar = progress_bar(None, total=len(todo), desc="sweep", unit="run",
                           disable=not progress, dynamic_ncols=True)
        try:
            if executor == "serial":
                _run_serial(todo, root, force, bar, res)
            else:
                with _client(executor, workers, connect_timeout) as client:
                    check_store(client, root)
                    _run_dask(client, todo, root, force, retries, bar, res)
        except KeyboardInterrupt:
            bar.close()
            print(f"\nsweep interrupted: {res.computed} runs computed and stored, "
                  f"{len(todo) - res.computed - len(res.failed)} not; rerun the same command to "
                  f"compute only what is missing", file=sys.stderr)
            raise
        finally:
            bar.close()
            clean_stale_temps(root)
    res.wall_seconds = time.perf_counter() - t0
    return res


def _run_serial(todo: list[RunConfig], root: Path, force: bool, bar: Any,
                res: SweepResult) -> None:
    for cfg in todo:
        bar.set_postfix_str(f"{cfg.method} {cfg.dataset}/{cfg.scenario} s{cfg.seed}, "
                            f"failed {len(res.failed)}")
        try:
            res.add(run_task(cfg, str(root), force))
        except Exception as exc:  # noqa: BLE001 - listed at the end, the others go on
            res.failed.append(_failure(cfg, exc, exc.__traceback__))
        bar.update()


def _run_dask(client: Any, todo: list[RunConfig], root: Path, force: bool, retries: int,
              bar: Any, res: SweepResult) -> None:
    from distributed import wait

    futures = {client.submit(run_task, cfg, str(root), force, key=task_key(cfg), pure=False,
                             retries=retries, priority=_priority(cfg)): cfg for cfg in todo}
    pending = set(futures)
    try:
        while pending:
            try:
                done, pending = wait(pending, timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for fut in done:
                if fut.status == "finished":
                    res.add(fut.result())
                else:
                    exc = fut.exception() if fut.status == "error" else RuntimeError(fut.status)
                    tb = fut.traceback() if fut.status == "error" else None
                    res.failed.append(_failure(futures[fut], exc, tb))
                fut.release()
                bar.update()
            bar.set_postfix_str(f"running {_running(client, pending)}, failed {len(res.failed)}")
    except KeyboardInterrupt:
        client.cancel(list(pending), force=True)
        raise


def _running(client: Any, pending: set[Any]) -> int:
    """Runs of this sweep executing now: tasks on a worker, at most one per worker thread."""
    keys = {f.key for f in pending}
    nthreads = client.nthreads()
    return sum(min(len(keys.intersection(ks)), nthreads.get(w, 1))
               for w, ks in client.processing().items())


@contextmanager
def _client(executor: str, workers: int | None, connect_timeout: float) -> Iterator[Any]:
    """A Dask client on a new local cluster or on the scheduler at ``executor``."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    spawn_env = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                 if k != "MALLOC_TRIM_THRESHOLD_"}  # see undo_malloc_trimming
    settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                # one task at a time per worker thread: "running" in the bar means running
                "distributed.scheduler.worker-saturation": 1.0,
                # local workers: glibc's own malloc thresholds, and no statistical profiler
                # sampling every worker's stack each 10 ms (measured: a 2-worker sweep of 18
                # CIFAR-10 runs took 130 s with Dask's defaults, 81 s without; serial 125 s)
                "distributed.nanny.pre-spawn-environ": spawn_env,
                "distributed.worker.profile.enabled": False}
    with dask.config.set(settings):
        if executor == "local":
            from dask.system import CPU_COUNT  # cores this process may use (cgroups, affinity)

            n = workers or CPU_COUNT
            threads = os.environ.get("PAPERLIB_THREADS") or "1"
            env = {"PAPERLIB_THREADS": threads, "OMP_NUM_THREADS": threads,
                   "MKL_NUM_THREADS": threads}
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=logging.ERROR,
                              memory_limit=0, env=env) as cluster, Client(cluster) as client:
                client.run(_ignore_sigint)  # Ctrl-C is the client's to handle
                yield client
            return
        try:
            client = Client(executor, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise SweepError(
                f"cannot reach the Dask scheduler at {executor} within {connect_timeout:g} s "
                f"({type(exc).__name__}: {exc}). Start one with `dask scheduler` and workers "
                f"with `dask worker {executor}`, or use --scheduler local") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=connect_timeout)
            except TimeoutError:
                raise SweepError(f"the Dask scheduler at {executor} has no workers (waited "
                                 f"{connect_timeout:g} s); start some with "
                                 f"`dask worker {executor} --nthreads 1`") from None
            yield client


def _ignore_sigint() -> None:
    """Run on a local worker: a terminal's Ctrl-C reaches every process of its group; the
    sweep cancels the runs and closes the cluster, so the workers need not print tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def probe_store(path: str, token: str) -> str | None:
    """Run on a worker: read the client's probe file and write one next to it; None when
    both work, else what failed."""
    p = Path(path)
    try:
        if p.read_text() != token:
            return f"{p} holds another token (a different file system at the same path)"
    except OSError as exc:
        return f"cannot read {p}: {exc}"
    mine = p.with_name(f"{p.name}-{uuid.uuid4().hex[:8]}")
    try:
        mine.write_text(token)
        mine.unlink()
    except OSError as exc:
        return f"cannot write in {p.parent}: {exc}"
    return None


def check_store(client: Any, root: Path) -> None:
    """Raise :class:`SweepError` unless every worker can read and write ``root`` (a shared
    path) and import this paperlib."""
    token = uuid.uuid4().hex
    probe = root / f".probe-{token}"
    probe.write_text(token)
    try:
        answers = client.run(probe_store, str(probe), token, on_error="return")
    finally:
        probe.unlink(missing_ok=True)
    bad = {w: (f"{type(a).__name__}: {a}" if isinstance(a, BaseException) else a)
           for w, a in answers.items() if a is not None}
    if bad:
        detail = "\n".join(f"  {w}: {why}" for w, why in sorted(bad.items()))
        raise SweepError(
            f"the results store {root} is not usable from {len(bad)} of {len(answers)} "
            f"workers:\n{detail}\nPut the store on a file system every worker mounts at the "
            f"same path (PAPERLIB_RESULTS=/shared/path or --results) and install the same "
            f"paperlib on every worker")
