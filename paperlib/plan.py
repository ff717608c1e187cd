"""A plan before the run: every notebook's grid, its steps and training FLOPs, and a predicted
wall time on this machine, without training anything.

Counts come from the stream sizes (the scenario's streams are built, which needs the data but
no training), the batch size, each method's step rule (its sample source) and the
:class:`~paperlib.accounting.ComputeMeter` FLOP model, including the extra metered passes of
reward evaluations, importance estimates, the neuron cache and the rivals' extra passes
(:mod:`paperlib.plan_passes`); under a FLOP ``budget`` the steps are those the Retrainer takes.
They match what the runner records (``rounds["grad_steps"]``, ``rounds["train_flops"]``)
exactly, except where the data decide: a weight bandit's groups (the expectation over uniformly
chosen groups), MIR's candidate pool and GSS's per-sample scores once its memory is full; then
the run lies in the plan's ``steps_range`` / ``flops_range`` and the report marks it ``~``.

The time prediction comes from a short calibration on the current device
(:mod:`paperlib.calibrate`). Stream construction is timed while planning.

    paperlib plan -p profile paper            # every notebook
    paperlib plan -p profile smoke --notebooks 01_data_incremental

>>> cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
>>> p = plan_run(cfg)   # smoke: 4 shards, 2 train the first model; 2 epochs, then 1 per round
>>> p.rounds, p.steps
(3, [44, 11, 11])
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from paperlib.accounting import ComputeMeter
from paperlib.config import ConfigError, RunConfig, resolve_model
from paperlib.methods import build_method
from paperlib.models import build_model
from paperlib.plan_passes import (
    PlanError,  # noqa: F401 - re-exported
    default_steps,
    plugin_passes,
    round_work,
    scope_step_flops,
)
from paperlib.retrain import budget_flops
from paperlib.samples import _epoch_steps

if TYPE_CHECKING:  # pragma: no cover
    from paperlib.calibrate import Calibration


# --------------------------------------------------------------------------- the grids

def _targets() -> list[tuple[str, str, str | None]]:
    """``(make target, notebook, dataset variant)`` for every notebook run of ``make reproduce``."""
    from paperlib import grids

    return [(f"{name}_{v}" if v is not None else name, name, v)
            for name, spec in grids.NOTEBOOK_GRIDS.items()
            for v in spec.variants.get("dataset", (None,))]


NOTEBOOK_TARGETS: tuple[str, ...] = tuple(t for t, _, _ in _targets())


def notebook_grids(profile: str = "paper", seeds: Sequence[int] | None = None,
                   notebooks: Sequence[str] | None = None, device: str = "auto",
                   overrides: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> dict[str, list[RunConfig]]:
    """``{notebook target: its validated run configurations}`` as ``make reproduce`` runs them
    (from :mod:`paperlib.grids`, the notebooks' own source of truth; same targets as
    ``reproduce.mk``).

    ``overrides`` maps a target to extra run parameters (e.g. a CIFAR-10 subset).

    >>> grids = notebook_grids("smoke", notebooks=["06_bandit_dynamics"])
    >>> [(c.method, c.dataset, c.seed) for c in grids["06_bandit_dynamics"]]
    [('bandit', 'mnist', 0)]
    """
    from paperlib import grids

    wanted = list(notebooks) if notebooks else list(NOTEBOOK_TARGETS)
    for n in wanted:
        if n not in NOTEBOOK_TARGETS:
            from paperlib.config import did_you_mean

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


@dataclass
class RunPlan:
    """Predicted work of one run, per round (round 0 = the first served model).

    Attributes:
        steps, flops: optimizer steps and metered training FLOPs per round (what the runner
            records as ``grad_steps`` / ``train_flops``).
        extra_round_flops: metered FLOPs of the round's fixed passes (importance estimates,
            loss-group scoring); included in ``flops``.
        eval_samples: forward passes of evaluation per round (served accuracy, test splits,
            probe), not metered.
        flops_range: per round, the lowest and highest FLOPs the weight bandit's choices allow.
        steps_range: per round, the fewest and most steps (they differ only under a FLOP
            ``budget`` when the data decide a step's cost).
        exact: False when a bandit's choices or a memory's fill make ``flops`` (and under a
            budget ``steps``) an estimate (``~`` in the report).
    """

    config: RunConfig
    arch: str
    model_key: tuple
    steps: list[int] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)
    extra_round_flops: list[float] = field(default_factory=list)
    eval_samples: list[int] = field(default_factory=list)
    flops_range: list[tuple[float, float]] = field(default_factory=list)
    steps_range: list[tuple[int, int]] = field(default_factory=list)
    exact: bool = True
    stream_seconds: float = 0.0

    @property
    def rounds(self) -> int:
        return len(self.steps)

    @property
    def total_steps(self) -> int:
        return int(sum(self.steps))

    @property
    def total_flops(self) -> float:
        return float(sum(self.flops))


def _model_for(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int
               ) -> tuple[str, torch.nn.Module, tuple]:
    arch = resolve_model(cfg)
    model = build_model(arch, input_shape, n_classes, cfg.hidden_widths)
    key = (arch, tuple(input_shape), n_classes, cfg.hidden_widths, cfg.batch_size)
    return arch, model, key


_step_rule = default_steps
_mean_step_flops = scope_step_flops


def _plugin_passes(plugins: Sequence[Any], n_prev: int, n_seen: int, batch: int
                   ) -> tuple[float, float]:
    """``(round_fixed, per_step)`` samples of the plugins' extra forwards (see
    :func:`~paperlib.plan_passes.plugin_passes`)."""
    fixed, per_step, first = plugin_passes(plugins, n_prev, n_seen, batch)
    return fixed, per_step


def plan_run(cfg: RunConfig, stream: Any = None) -> RunPlan:
    """Count the steps, FLOPs and evaluation passes of ``cfg`` round by round, without training.

    ``stream`` (the run's :class:`~paperlib.streams.Stream`) is built when not given."""
    t0 = time.perf_counter()
    if stream is None:
        from paperlib.runner import stream_for

        stream = stream_for(cfg)
    built_seconds = time.perf_counter() - t0
    arch, model, key = _model_for(cfg, stream.input_shape, stream.n_classes)
    meter = ComputeMeter(model, stream.input_shape)
    built = build_method(cfg.method, cfg.hparams, cfg.epochs, cfg.seed)
    B = cfg.batch_size
    plan = RunPlan(cfg, arch, key, stream_seconds=built_seconds)
    all_step = meter.step_flops(B, meter.group_names)
    n_params = sum(p.numel() for p in model.parameters())
    n_seen, n_prev = 0, 0
    guard = cfg.guard_tolerance is not None
    for r, chunk in enumerate([stream.initial, *stream.rounds]):
        n_chunk = len(chunk)
        n_new = n_chunk - (max(1, round(cfg.guard_fraction * n_chunk)) if guard else 0)
        evals = sum(len(s) for s in stream.test_splits)
        if r == 0:
            steps = _epoch_steps(n_new, B, cfg.epochs_initial)
            flops, fixed = steps * all_step, 0.0
            lo = hi = flops
            plan.steps_range.append((steps, steps))
        else:
            work = round_work(built, meter, n_params, r, n_new, n_seen, n_prev, B)
            if cfg.budget is not None:
                limit = budget_flops(cfg.budget, n_new, meter.step_flops(1, meter.group_names))
                steps = work.budget_steps(limit)
                lo_steps, hi_steps = work.budget_steps(limit, 2), work.budget_steps(limit, 1)
            else:
                steps = lo_steps = hi_steps = (cfg.steps if cfg.steps is not None
                                               else work.default_steps)
            plan.exact &= work.exact and lo_steps == hi_steps
            fixed = work.fixed
            flops = work.flops(steps)
            lo, hi = work.flops(lo_steps, 1), work.flops(hi_steps, 2)
            if cfg.budget is not None:  # the last step's overshoot is at most one step
                lo, hi = min(lo, work.flops(hi_steps, 1)), max(hi, work.flops(lo_steps, 2))
            plan.steps_range.append((int(lo_steps), int(hi_steps)))
            evals += n_chunk + 2 * len(stream.probe)
            if guard:
                evals += 2 * (n_chunk - n_new) * r  # the guard set grows every round
        plan.steps.append(int(steps))
        plan.flops.append(float(flops))
        plan.flops_range.append((float(lo), float(hi)))
        plan.extra_round_flops.append(float(fixed))
        plan.eval_samples.append(int(evals))
        n_seen = n_seen + n_new if cfg.store_capacity is None else min(cfg.store_capacity,
                                                                     n_seen + n_new)
        n_prev = n_new
    return plan


def _stream_key(cfg: RunConfig) -> tuple:
    skip = {"method", "device", "profile", "model", "hidden_widths", "epochs_initial", "epochs",
            "steps", "batch_size", "lr", "optimizer", "grad_clip", "store_capacity",
            "guard_tolerance", "guard_fraction"}
    return tuple((k, v) for k, v in sorted(cfg.params().items())
                 if k not in skip and k not in cfg.hparams)


def plan_grid(configs: Sequence[RunConfig]) -> list[RunPlan]:
    """:func:`plan_run` for every config, building each distinct stream once."""
    from paperlib.datasets import resolve_mirror, resolve_root
    from paperlib.runner import stream_for
    from paperlib.streams import _load_memo

    streams: dict[tuple, tuple[Any, float]] = {}
    plans = []
    for cfg in configs:
        key = _stream_key(cfg)
        if key not in streams:
            mirror = resolve_mirror(None)
            _load_memo(cfg.dataset, str(resolve_root(None)), "" if mirror is None else str(mirror),
                       None)  # time the stream's construction, not the (memoised) data load
            t0 = time.perf_counter()
            streams[key] = (stream_for(cfg), time.perf_counter() - t0)
        stream, seconds = streams[key]
        p = plan_run(cfg, stream)
        p.stream_seconds = seconds  # every run builds its stream again (data load memoised)
        plans.append(p)
    return plans


# --------------------------------------------------------------------------- the report


def plan_table(grids: Mapping[str, Sequence[RunConfig]], cal: Calibration | None = None,
               plans: Sequence[RunPlan] | None = None) -> list[dict[str, Any]]:
    """One row per notebook: runs, new runs (not already run by an earlier notebook: a cache
    hit), steps and training FLOPs of the new runs (every round, round 0 included), and their
    predicted seconds when ``cal`` is given; then a ``total`` row."""
    from paperlib.calibrate import predict_seconds

    configs = [c for cs in grids.values() for c in cs]
    plans = list(plans) if plans is not None else plan_grid(configs)
    by_key = {}
    for c, p in zip(configs, plans, strict=True):
        by_key.setdefault(c.key("x"), p)
    done: set[str] = set()
    rows = []
    for name, cs in grids.items():
        new = [by_key[c.key("x")] for c in cs if c.key("x") not in done]
        done.update(c.key("x") for c in cs)
        row = {"notebook": name, "runs": len(cs), "new_runs": len(new),
               "steps": sum(p.total_steps for p in new),
               "train_flops": sum(p.total_flops for p in new),
               "flops_exact": all(p.exact for p in new),
               "steps_exact": all(a == b for p in new for a, b in p.steps_range)}
        if cal is not None:
            row["predicted_seconds"] = sum(predict_seconds(p, cal) for p in new)
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

    from paperlib.experiments import parse_list

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
            from paperlib.config import did_you_mean

            raise ConfigError(f"unknown plan parameter {name!r}"
                              f"{did_you_mean(name, ['profile', 'seeds', 'device'])}; valid: "
                              f"profile, seeds, device")
        grids = notebook_grids(params.get("profile", "paper"),
                               parse_list(params.get("seeds"), int),
                               parse_list(args.notebooks), params.get("device", "auto"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from paperlib.calibrate import calibrate

    configs = [c for cs in grids.values() for c in cs]
    plans = plan_grid(configs)
    cal = None if args.no_calibrate else calibrate(plans, args.calibration_steps)
    rows = plan_table(grids, cal, plans)
    print(format_plan(rows, cal, args.workers))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0
