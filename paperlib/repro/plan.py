"""A plan before the run: every notebook's grid, its steps and training FLOPs, and a predicted
wall time on this machine, without training anything.

Counts come from the stream sizes (the scenario's streams are built, which needs the data but
no training), the batch size, each method's step rule (its sample source) and the
:class:`~paperlib.engine.accounting.ComputeMeter` FLOP model, including the extra metered passes of
reward evaluations, importance estimates, the neuron cache and the rivals' extra passes
(:mod:`paperlib.repro.plan_passes`); under a FLOP ``budget`` the steps are those the Retrainer takes.
They match what the runner records (``rounds["grad_steps"]``, ``rounds["train_flops"]``)
exactly, except where the data decide: a weight bandit's groups (the expectation over uniformly
chosen groups), MIR's candidate pool and GSS's per-sample scores once its memory is full; then
the run lies in the plan's ``steps_range`` / ``flops_range`` and the report marks it ``~``.

The time prediction comes from a short calibration on the current device
(:mod:`paperlib.repro.calibrate`). Stream construction is timed while planning.

    paperlib plan -p profile paper            # every notebook
    paperlib plan -p profile smoke --notebooks 01_data_incremental

>>> cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
>>> p = plan_run(cfg)   # smoke: 4 shards, 2 train the first model; 2 epochs, then 1 per round
>>> p.rounds, p.steps
(3, [44, 11, 11])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from paperlib.repro.plan_count import (  # noqa: F401 - re-exported
    RunPlan,
    _mean_step_flops,
    _plugin_passes,
    _step_rule,
    plan_grid,
    plan_run,
)
from paperlib.repro.plan_passes import PlanError  # noqa: F401 - re-exported
from paperlib.serving.config import ConfigError, RunConfig

if TYPE_CHECKING:  # pragma: no cover
    from paperlib.repro.calibrate import Calibration


# --------------------------------------------------------------------------- the grids

def _targets() -> list[tuple[str, str, str | None]]:
    """``(make target, notebook, dataset variant)`` for every notebook run of ``make reproduce``."""
    from paperlib.repro import grids

    return [(f"{name}_{v}" if v is not None else name, name, v)
            for name, spec in grids.NOTEBOOK_GRIDS.items()
            for v in spec.variants.get("dataset", (None,))]


NOTEBOOK_TARGETS: tuple[str, ...] = tuple(t for t, _, _ in _targets())


def notebook_grids(profile: str = "paper", seeds: Sequence[int] | None = None,
                   notebooks: Sequence[str] | None = None, device: str = "auto",
                   overrides: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> dict[str, list[RunConfig]]:
    """``{notebook target: its validated run configurations}`` as ``make reproduce`` runs them
    (from :mod:`paperlib.repro.grids`, the notebooks' own source of truth; same targets as
    ``reproduce.mk``).

    ``overrides`` maps a target to extra run parameters (e.g. a CIFAR-10 subset).

    >>> grids = notebook_grids("smoke", notebooks=["06_bandit_dynamics"])
    >>> [(c.method, c.dataset, c.seed) for c in grids["06_bandit_dynamics"]]
    [('bandit', 'mnist', 0)]
    """
    from paperlib.repro import grids

    wanted = list(notebooks) if notebooks else list(NOTEBOOK_TARGETS)
    for n in wanted:
        if n not in NOTEBOOK_TARGETS:
            from paperlib.spec import did_you_mean

            raise ConfigError(f"unknown notebook {n!r}{did_you_mean(n, list(NOTEBOOK_TARGETS))}; "
                              f"valid: {', '.join(NOTEBOOK_TARGETS)}")
    out: dict[str, list[RunConfig]] = {}
    for target, name, dataset in _targets():
        if target not in wanted:
            continue
        params: dict[str, Any] = {"profile": profile, "device": device}
        if seeds is not None:
            params["seeds"] = list(seeds)
        if dataset is not None:
            params["dataset"] = dataset
        if overrides and overrides.get(target):
            params["overrides"] = dict(overrides[target])
        out[target] = grids.notebook_grid(name, params)
    return out


# --------------------------------------------------------------------------- counting
# (paperlib.repro.plan_count; re-exported here)


# --------------------------------------------------------------------------- the report


def plan_table(grids: Mapping[str, Sequence[RunConfig]], cal: Calibration | None = None,
               plans: Sequence[RunPlan] | None = None) -> list[dict[str, Any]]:
    """One row per notebook: runs, new runs (not already run by an earlier notebook: a cache
    hit), steps and training FLOPs of the new runs (every round, round 0 included), and their
    predicted seconds when ``cal`` is given (the distinct runs one after another in one
    process, a first model shared by several methods trained once:
    :func:`~paperlib.repro.calibrate.predict_grid_seconds`); then a ``total`` row."""
    from paperlib.repro.calibrate import predict_grid_seconds

    configs = [c for cs in grids.values() for c in cs]
    plans = list(plans) if plans is not None else plan_grid(configs)
    by_key = {}
    for c, p in zip(configs, plans, strict=True):
        by_key.setdefault(c.key("x"), p)
    seconds = {}  # run key -> predicted seconds, the distinct runs in order in one process
    if cal is not None:
        keys = list(by_key)
        seconds = dict(zip(keys, predict_grid_seconds([by_key[k] for k in keys], cal),
                           strict=True))
    done: set[str] = set()
    rows = []
    for name, cs in grids.items():
        new_keys = list(dict.fromkeys(c.key("x") for c in cs if c.key("x") not in done))
        new = [by_key[k] for k in new_keys]
        done.update(c.key("x") for c in cs)
        row = {"notebook": name, "runs": len(cs), "new_runs": len(new),
               "steps": sum(p.total_steps for p in new),
               "train_flops": sum(p.total_flops for p in new),
               "flops_exact": all(p.exact for p in new),
               "steps_exact": all(a == b for p in new for a, b in p.steps_range)}
        if cal is not None:
            row["predicted_seconds"] = sum(seconds[k] for k in new_keys)
        rows.append(row)
    total = {"notebook": "total", "runs": sum(r["runs"] for r in rows),
             "new_runs": sum(r["new_runs"] for r in rows), "steps": sum(r["steps"] for r in rows),
             "train_flops": sum(r["train_flops"] for r in rows),
             "flops_exact": all(r["flops_exact"] for r in rows),
             "steps_exact": all(r["steps_exact"] for r in rows)}
    if cal is not None:
        total["predicted_seconds"] = sum(r["predicted_seconds"] for r in rows)
    return [*rows, total]


def format_plan(rows: Sequence[Mapping[str, Any]], cal: Calibration | None = None,
                workers: int = 1) -> str:
    """The plan as a text table (``~`` marks steps and FLOPs that are an estimate: a bandit's
    choices or a rival's memory decide them)."""
    head = f"{'notebook':<34}{'runs':>6}{'new':>6}{'steps':>12}{'train FLOPs':>14}"
    head += f"{'predicted':>12}" if cal is not None else ""
    lines = [head, "-" * len(head)]
    for r in rows:
        fl = f"{'' if r['flops_exact'] else '~'}{r['train_flops']:.3e}"
        st = f"{'' if r.get('steps_exact', True) else '~'}{r['steps']:,}"
        line = f"{r['notebook']:<34}{r['runs']:>6}{r['new_runs']:>6}{st:>12}{fl:>14}"
        if cal is not None:
            line += f"{_hms(r['predicted_seconds']):>12}"
        lines.append(line)
    if cal is not None:
        total = rows[-1]["predicted_seconds"]
        lines.append(f"predicted on {cal.device} with {cal.threads} thread(s), one run at a time: "
                     f"{_hms(total)}" + (f"; about {_hms(total / workers)} with {workers} "
                                         f"concurrent workers" if workers > 1 else "")
                     + f" (calibration took {cal.seconds:.1f} s)")
    return "\n".join(lines)


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main(argv: Sequence[str] | None = None) -> int:
    """``paperlib plan``: see the module docstring."""
    import argparse
    import json
    import sys

    from paperlib.repro.experiments import parse_list

    ap = argparse.ArgumentParser(prog="paperlib plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="profile, seeds or device")
    ap.add_argument("--notebooks", help="comma-separated notebook targets (default: all)")
    ap.add_argument("--calibration-steps", type=int, default=24)
    ap.add_argument("--no-calibrate", action="store_true", help="counts only, no timing")
    ap.add_argument("--workers", type=int, default=1, help="also show the time with N workers")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args(argv)
    params = dict(args.param)
    unknown = set(params) - {"profile", "seeds", "device"}
    try:
        for name in sorted(unknown):
            from paperlib.spec import did_you_mean

            raise ConfigError(f"unknown plan parameter {name!r}"
                              f"{did_you_mean(name, ['profile', 'seeds', 'device'])}; valid: "
                              f"profile, seeds, device")
        grids = notebook_grids(params.get("profile", "paper"),
                               parse_list(params.get("seeds"), int),
                               parse_list(args.notebooks), params.get("device", "auto"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from paperlib.repro.calibrate import calibrate

    configs = [c for cs in grids.values() for c in cs]
    plans = plan_grid(configs)
    cal = None if args.no_calibrate else calibrate(plans, args.calibration_steps)
    rows = plan_table(grids, cal, plans)
    print(format_plan(rows, cal, args.workers))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0
