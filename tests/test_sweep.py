"""Sweeps on Dask: on a real LocalCluster with 2 worker processes the results equal serial runs,
a worker killed mid-sweep still leaves a complete store, an unreachable scheduler fails fast;
the store is race-safe across processes; the grids are the notebooks' grids."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from paperlib.repro import experiments, gridrun, grids
from paperlib.repro.cli import main as cli_main
from paperlib.repro.experiments import grid_configs
from paperlib.repro.sweep import SweepError, check_store, probe_store, sweep
from paperlib.serving.runner import run
from paperlib.serving.store import clean_stale_temps, read_run, write_run

REPO = Path(__file__).resolve().parents[1]
SMOKE = {"dataset": "digits", "scenario": "class_incremental", "profile": "smoke",
         "device": "cpu"}
FILES = {"rounds.csv", "summary.json", "config.json", "env.json"}


@pytest.fixture
def one_thread():
    """Serial sweeps pin torch's threads in this process (as a worker does); restore them."""
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _comparable(result) -> tuple[pd.DataFrame, dict]:
    """A run's rounds and summary without wall-clock/memory measurements and paths."""
    rounds = result.rounds.drop(columns=[c for c in result.rounds.columns
                                         if "seconds" in c or "memory" in c])
    summary = {k: v for k, v in result.summary.items()
               if "seconds" not in k and "memory" not in k and k != "results_path"}
    return rounds, summary


def _assert_complete(root: Path, configs) -> None:
    """Every configuration is a cache hit with all its files, nothing half-written remains."""
    for cfg in configs:
        r = run(cfg, results=root)
        assert r.cached, cfg
        assert FILES <= {p.name for p in r.path.iterdir()}
        assert len(r.rounds) == 1 + cfg.n_new_shards
    assert not [p for p in root.iterdir() if p.name.startswith(".")], list(root.iterdir())


# --------------------------------------------------------------------------- Dask executors


@pytest.mark.slow
def test_local_cluster_equals_serial(tmp_path: Path, one_thread) -> None:
    configs = grid_configs(SMOKE, ["finetune", "bandit"], [0, 1])
    serial = sweep(configs, scheduler="serial", results=tmp_path / "serial", progress=False)
    local = sweep(configs + configs[:2], scheduler="local", workers=2,
                  results=tmp_path / "local", progress=False)
    assert serial.ok and local.ok, local.report()
    assert (local.computed, local.cached, len(local.configs)) == (4, 0, 4)  # duplicates once
    for cfg in configs:
        a, b = run(cfg, results=tmp_path / "serial"), run(cfg, results=tmp_path / "local")
        assert a.cached and b.cached and b.env["cpu_threads"] == 1
        (ra, sa), (rb, sb) = _comparable(a), _comparable(b)
        pd.testing.assert_frame_equal(ra, rb)
        assert sa == sb
    again = sweep(configs, scheduler="local", workers=2, results=tmp_path / "local",
                  progress=False)
    assert (again.computed, again.cached) == (0, 4)  # a rerun computes only what is missing


@pytest.fixture
def cluster():
    """A real LocalCluster with 2 single-threaded worker processes (an 'existing' cluster)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, memory_limit=0) as lc, Client(lc) as client:
        yield lc, client


@pytest.mark.slow
def test_worker_killed_mid_sweep_leaves_complete_store(tmp_path: Path, cluster) -> None:
    lc, client = cluster
    pids = client.run(os.getpid)
    configs = grid_configs({**SMOKE, "epochs": 4}, ["full_retrain", "bandit"], [0, 1, 2])
    killed: dict[str, int] = {}

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items()
                    if any(str(k).startswith("paperlib-run-") for k in keys) and w in pids]
            if busy:
                time.sleep(1.0)  # the run is under way (data loaded, training)
                if busy[0] in client.processing():
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed[busy[0]] = pids[busy[0]]
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    result = sweep(configs, scheduler=lc.scheduler_address, results=tmp_path, progress=False)
    killer.join(5)
    assert killed, "no worker was busy long enough to be killed"
    assert result.ok and result.computed == len(configs), result.report()
    assert set(client.run(os.getpid).values()).isdisjoint(killed.values())  # restarted
    _assert_complete(tmp_path, configs)


def test_unreachable_scheduler_fails_fast(tmp_path: Path, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match=f"cannot reach the Dask scheduler at {address}"):
        sweep(grid_configs(SMOKE, ["finetune"], [0]), scheduler=address, results=tmp_path,
              progress=False, connect_timeout=1)
    assert time.perf_counter() - t0 < 20
    code = cli_main(["sweep", "-p", "profile", "smoke", "--notebook", "06_bandit_dynamics",
                     "--scheduler", address, "--timeout", "1", "--results", str(tmp_path)])
    assert code == 2 and f"cannot reach the Dask scheduler at {address}" in capsys.readouterr().err


def test_store_unreachable_from_a_worker_is_named(tmp_path: Path) -> None:
    class TwoWorkers:  # worker B sees another file system at the same path
        def run(self, fn, path, token, on_error):
            return {"tcp://a:1": fn(path, token), "tcp://b:1": fn(path + "-elsewhere", token)}

    assert probe_store(str(tmp_path / "nothing"), "t").startswith("cannot read")
    with pytest.raises(SweepError, match=r"(?s)not usable from 1 of 2 workers:\n  tcp://b:1: cannot "
                                         r"read .*PAPERLIB_RESULTS"):
        check_store(TwoWorkers(), tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe file is removed


# --------------------------------------------------------------------------- failures, store


def test_failures_are_listed_and_the_other_runs_kept(tmp_path: Path, monkeypatch, capsys,
                                                     one_thread) -> None:
    import paperlib.serving.runner

    real_run = paperlib.serving.runner.run

    def flaky(cfg, **kw):
        if cfg.method == "replay":
            raise FloatingPointError("boom in replay")
        return real_run(cfg, **kw)

    monkeypatch.setattr(paperlib.serving.runner, "run", flaky)
    code = cli_main(["sweep", "-p", "profile", "smoke", "--notebook", "05_ablations",
                     "-p", "methods", "finetune,replay", "-p", "seeds", "0",
                     "-p", "overrides", json.dumps({"dataset": "digits", "device": "cpu"}),
                     "--scheduler", "serial", "--results", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 runs on serial: 0 cached, 1 computed, 1 failed" in out
    assert "replay digits/class_incremental seed 0" in out and "boom in replay" in out
    assert "in flaky" in out  # the traceback
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["finetune"]


def _race_writer(root: str, n: int, barrier, out: str) -> None:
    table = pd.DataFrame({"x": range(2000)})
    paths = []
    for i in range(n):
        barrier.wait()
        paths.append(str(write_run(Path(root), f"run{i}", {"rounds": table},
                                   {"summary": {"pid": os.getpid()}})))
    Path(out).write_text("\n".join(paths))


def test_two_processes_finishing_the_same_run_leave_one_intact_result(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    barrier, n, root = ctx.Barrier(2), 25, tmp_path / "store"
    procs = [ctx.Process(target=_race_writer, args=(str(root), n, barrier, str(tmp_path / f"{k}")))
             for k in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0  # neither writer failed
    expected = [str(root / f"run{i}") for i in range(n)]
    assert (tmp_path / "a").read_text().split() == (tmp_path / "b").read_text().split() == expected
    assert sorted(p.name for p in root.iterdir()) == sorted(f"run{i}" for i in range(n))
    for i in range(n):
        data = read_run(root / f"run{i}")
        assert len(data["rounds"]) == 2000 and "pid" in data["summary"]


def test_a_writer_losing_the_rename_race_keeps_the_winner(tmp_path: Path, monkeypatch) -> None:
    """Deterministic version of the race: another process stores the same run between this
    writer's last check and its rename (Linux refuses to rename onto a non-empty folder)."""
    real_rename, raced = Path.rename, []

    def rename(self: Path, target):
        if not raced and self.name.startswith(".tmp-") and Path(target).name == "run":
            raced.append(1)  # the other process wins now
            write_run(tmp_path, "run", {"rounds": pd.DataFrame({"x": [1]})},
                      {"summary": {"who": "winner"}})
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    path = write_run(tmp_path, "run", {"rounds": pd.DataFrame({"x": [2]})},
                     {"summary": {"who": "loser"}})
    assert raced and read_run(path)["summary"] == {"who": "winner"}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_stale_temporary_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())
    stale = tmp_path / f".tmp-{host}-{dead.pid}-finetune-x-abc"
    live = tmp_path / f".tmp-{host}-{os.getpid()}-finetune-x-def"
    other = tmp_path / ".tmp-otherhost-1-finetune-x-ghi"
    for p in (stale, live, other):
        p.mkdir()
    assert clean_stale_temps(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


# --------------------------------------------------------------------------- grids


def test_every_notebook_has_a_grid_and_make_runs_its_variants() -> None:
    sys.path.insert(0, str(REPO / "notebooks"))
    try:
        import _build
    finally:
        sys.path.pop(0)
    assert sorted(_build.NOTEBOOKS) == sorted(grids.NOTEBOOK_GRIDS)
    mk = (REPO / "reproduce.mk").read_text()
    targets = set(re.search(r"REPRO_NOTEBOOKS :=(.*?)\n\S", mk, re.S).group(1).split()) - {"\\"}
    expected = {name if not s.variants else f"{name}_{v}"
                for name, s in grids.NOTEBOOK_GRIDS.items()
                for v in (s.variants.get("dataset") or [None])}
    assert targets == expected


def test_profile_grid_reads_the_method_lists_and_has_no_duplicates(monkeypatch) -> None:
    quick = grids.profile_grid("quick")
    ids = [grids.config_id(c) for c in quick]
    assert len(ids) == len(set(ids))
    for name in ("01_data_incremental", "05_ablations"):
        assert set(map(grids.config_id, grids.notebook_grid(name, {"profile": "quick"}))) <= set(ids)
    assert {c.seed for c in quick} == set(experiments.PROFILE_SEEDS["quick"])
    weather = grids.profile_grid("quick", {"dataset": "weather", "seeds": "0"})
    assert {(c.dataset, c.scenario, c.seed) for c in weather} == {("weather", "stream", 0)}
    assert [c.method for c in weather] == list(gridrun.scenario_methods("quick", "weather"))
    assert not {c.method for c in weather} & set(gridrun.REGULARIZER_METHODS)  # MNIST only
    mnist = grids.profile_grid("quick", {"dataset": "mnist", "seeds": "0"})
    assert set(gridrun.REGULARIZER_METHODS) <= {c.method for c in mnist}
    monkeypatch.setattr(gridrun, "ABLATION_METHODS", ("finetune", "si"))  # e.g. a new one
    n_seeds = len(experiments.PROFILE_SEEDS["quick"])
    assert [c.method for c in grids.notebook_grid("05_ablations", {"profile": "quick"})] \
        == ["finetune"] * n_seeds + ["si"] * n_seeds


@pytest.mark.slow
def test_notebook_renders_from_the_sweep_cache(tmp_path: Path, one_thread) -> None:
    from paperlib.repro.notebooks import execute

    params = {"profile": "smoke", "seeds": "0", "methods": "finetune",
              "overrides": json.dumps({"dataset": "digits"}), "budgets": "1",
              "budget_methods": "finetune"}
    code = cli_main(["sweep", "--notebook", "07_cost_vs_accuracy", "--scheduler", "serial",
                     "--results", str(tmp_path / "r"), "--quiet",
                     *[x for k, v in params.items() for x in ("-p", k, v)]])
    assert code == 0
    stored = sorted(p.name for p in (tmp_path / "r").iterdir())
    # 07: finetune on data- and class-incremental, and its budget sweep: finetune at budget 1
    # and the full_retrain reference on the sweep's scenario (smoke: data-incremental)
    assert len(stored) == 4
    out = tmp_path / "07.ipynb"
    execute(REPO / "notebooks" / "07_cost_vs_accuracy.ipynb", out,
            {**params, "figures_dir": str(tmp_path / "fig")},
            env={"PAPERLIB_RESULTS": str(tmp_path / "r")})
    assert out.exists() and sorted(p.name for p in (tmp_path / "r").iterdir()) == stored
