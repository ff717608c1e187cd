"""The serving simulation: train the first model, then round after round serve, retrain,
evaluate and account for the cost.

Round ``r >= 1``:

1. chunk ``r`` arrives; the *served* model predicts it before its labels are used
   (prequential accuracy);
2. the method retrains a candidate from the served model (or from scratch) with its sample
   source, weight scope and regularisers;
3. optional deployment guard: if the candidate's accuracy on a held-out share of the chunks
   seen so far is lower than the served model's by more than ``guard_tolerance``, the served
   model stays (``deployed = False``);
4. the deployed model is evaluated on every test split (a row of the accuracy matrix) and
   compared with the previous served model on a fixed probe set (negative flip rate);
5. the chunk joins the store of seen data.

>>> result = run({"dataset": "digits", "method": "finetune", "profile": "smoke"}, store=False)
>>> list(result.accuracy_matrix.columns)
['all']
>>> len(result.rounds) == 1 + 2   # round 0 + two new shards (smoke profile: 4 shards, 2 initial)
True
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from paperlib.data.streams import Chunk, Stream
from paperlib.engine import metrics
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.determinism import configure as configure_numerics
from paperlib.engine.models import build_model, resolve_device
from paperlib.engine.plugins import RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings, heads_table, predict
from paperlib.engine.samples import NewOnly, SeenData
from paperlib.engine.weights import AllWeights
from paperlib.method.methods import build_method
from paperlib.progress import progress_bar
from paperlib.serving.config import RunConfig, as_jsonable, resolve_model
from paperlib.serving.provenance import code_hash, key_context, pin_threads
from paperlib.serving.store import (
    environment_record,
    find_run,
    read_run,
    results_root,
    run_dir_name,
    write_run,
)


@dataclass
class RunResult:
    """Everything one run produced.

    Attributes:
        config: the resolved configuration.
        rounds: tidy table, one row per round (:class:`~paperlib.engine.metrics.RoundRecord` fields,
            accuracies as ``acc/<split>`` columns) plus ``method, dataset, scenario, seed``.
        summary: headline numbers (see :func:`summarize`).
        tables: bandit logs (``sample_arms``, ``sample_trace``, ``weight_groups``) when present.
        env: the environment record.
        path: the results folder (None when not stored).
        cached: True when loaded from the store instead of computed.
    """

    config: RunConfig
    rounds: pd.DataFrame
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    cached: bool = False

    @property
    def accuracy_matrix(self) -> pd.DataFrame:
        """Rows = rounds, columns = test splits: ``A[r, j]``."""
        cols = [c for c in self.rounds.columns if c.startswith("acc/")]
        return self.rounds.set_index("round")[cols].rename(columns=lambda c: c[4:])


def summarize(cfg: RunConfig, rounds: pd.DataFrame, learned_at: list[int],
              meta: Mapping[str, Any]) -> dict[str, Any]:
    """Headline numbers of a run; costs sum over retraining rounds 1..R (round 0, the first
    model, is the same for every method and excluded). ``learned_at``: per test split,
    :attr:`~paperlib.data.streams.TestSplit.learned_at` (forgetting, backward transfer)."""
    A = rounds[[c for c in rounds.columns if c.startswith("acc/")]].to_numpy()
    later = rounds[rounds["round"] >= 1]
    steps = later["grad_steps"].to_numpy()
    final = rounds.iloc[-1]
    return {
        "method": cfg.method, "dataset": cfg.dataset, "scenario": cfg.scenario, "seed": cfg.seed,
        "profile": cfg.profile,
        "final_avg_accuracy": float(final["avg_accuracy"]),
        "final_accuracy_by_split": {c[4:]: float(final[c]) for c in rounds.columns
                                    if c.startswith("acc/")},
        "forgetting": metrics.forgetting(A, learned_at),
        "backward_transfer": metrics.backward_transfer(A, learned_at),
        "prequential_accuracy": metrics.prequential_accuracy(
            (later["served_accuracy"] * later["n_new"]).round().to_numpy(), later["n_new"].to_numpy()),
        "negative_flip_rate": float(later["negative_flip_rate"].mean()),
        "retrain_seconds": float(later["retrain_seconds"].sum()),
        "train_flops": float(later["train_flops"].sum()),
        "grad_steps": int(steps.sum()),
        "samples_processed": int(later["samples_processed"].sum()),
        "trainable_fraction": float(np.average(later["trainable_fraction"], weights=steps))
        if steps.sum() else float("nan"),
        "peak_memory_bytes": int(later["peak_memory_bytes"].max()) if len(later) else 0,
        "rounds": int(len(rounds) - 1),
        "deployments_rejected": int((~later["deployed"].astype(bool)).sum()),
        "data_source": meta.get("source", "unknown"),
        "lossy_data": bool(meta.get("lossy", False)),
    }


def _split_guard(chunk: Chunk, fraction: float, gen: torch.Generator) -> tuple[Chunk, Chunk]:
    perm = torch.randperm(len(chunk), generator=gen)
    n_guard = max(1, round(fraction * len(chunk)))
    g, t = perm[:n_guard], perm[n_guard:]
    return (Chunk(chunk.x[t], chunk.y[t], chunk.name, chunk.classes),
            Chunk(chunk.x[g], chunk.y[g], chunk.name + " (guard)", chunk.classes))


#: First models trained in this process: ``key -> (state_dict, RoundCost, RNG states)``
#: (:func:`_first_model`); the few most recent are kept.
_FIRST_MODELS: OrderedDict[tuple, tuple[dict, Any, tuple]] = OrderedDict()
FIRST_MODEL_CACHE_SIZE = 16
#: Run settings that do not reach round 0: a method (and its hyper-parameters) and its
#: retraining step rule only act from round 1 on.
_NOT_IN_ROUND0 = ("method", "hparams", "steps", "budget", "epochs")


def round0_settings(cfg: RunConfig) -> str:
    """The run settings that decide round 0 (every config field but :data:`_NOT_IN_ROUND0`),
    as one string: runs with equal strings (and inert round-0 plugins) share a first model
    through :func:`_first_model`'s cache, and ``paperlib plan`` charges round 0 once for them."""
    return repr(sorted((k, v) for k, v in as_jsonable(cfg).items() if k not in _NOT_IN_ROUND0))


def shares_first_model(plugins: list) -> bool:
    """Whether a method with these plugins may take its first model from the cache
    (:func:`_first_model`): every plugin is inert in round 0 (``Plugin.inert_in_round0``).
    The one rule that both the runner and ``paperlib plan`` use."""
    return all(getattr(p, "inert_in_round0", False) for p in plugins)


def clear_first_models() -> None:
    """Empty this process's cache of first models (the next run trains its round 0)."""
    _FIRST_MODELS.clear()


def _first_model(cfg: RunConfig, arch: str, model: torch.nn.Module, plugins: list,
                 train: Callable[[], Any]) -> Any:
    """Round 0 (the first served model) through a per-process cache.

    Round 0 trains with ``NewOnly`` on all weights whatever the method, so every method whose
    plugins are inert there (``Plugin.inert_in_round0``) gets the same first model from the
    same run settings. The first such run in a process trains it (``train()``) and keeps the
    weights, the round's cost and the random generators' states after it; the next run with
    equal settings (every config field but :data:`_NOT_IN_ROUND0`) loads them instead of
    retraining: bit-identical results (``tests/test_first_model_cache.py`` compares every
    method with and without it), at about a third less time per run in a sweep, where each
    worker process runs many methods of one seed. A method with a non-inert plugin (SI, EWC,
    LwF...) always trains its own."""
    if not shares_first_model(plugins):
        return train()
    before = torch.get_rng_state()  # a method that drew random numbers earlier gets its own
    key = (arch, round0_settings(cfg), str(next(model.parameters()).device),
           hash(before.numpy().tobytes()))
    hit = _FIRST_MODELS.get(key)
    if hit is None:
        cost = train()
        rng = (torch.get_rng_state(),
               torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
        _FIRST_MODELS[key] = ({k: v.detach().clone() for k, v in model.state_dict().items()},
                              cost, rng)
        while len(_FIRST_MODELS) > FIRST_MODEL_CACHE_SIZE:
            _FIRST_MODELS.popitem(last=False)
        return cost
    _FIRST_MODELS.move_to_end(key)
    state, cost, (cpu_rng, cuda_rng) = hit
    model.load_state_dict(state)
    torch.set_rng_state(cpu_rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)
    return cost


def simulate(cfg: RunConfig, stream: Stream, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Run the serving simulation; returns the rounds table and the bandit log tables."""
    device = resolve_device(cfg.device)
    configure_numerics(device)  # seeded, TF32 off, deterministic cuDNN (paperlib.engine.determinism)
    torch.manual_seed(cfg.seed)
    arch = resolve_model(cfg)

    def fresh_model() -> torch.nn.Module:
        return build_model(arch, stream.input_shape, stream.n_classes, cfg.hidden_widths).to(device)

    model = fresh_model()
    meter = ComputeMeter(model, stream.input_shape)
    heads = stream.meta.get("heads")
    heads = heads_table(heads, stream.n_classes)
    heads = heads.to(device) if heads is not None else None
    built = build_method(cfg.method, cfg.hparams, cfg.epochs, cfg.seed)
    retrainer = Retrainer(TrainSettings(cfg.batch_size, cfg.lr, cfg.optimizer, cfg.grad_clip,
                                        lr_schedule=cfg.lr_schedule,
                                        freeze_bn_stats=cfg.freeze_bn_stats))
    seen = SeenData(cfg.store_capacity, device, torch.Generator().manual_seed(cfg.seed))
    split_names = [s.name for s in stream.test_splits]
    introduced = [s.introduced_at for s in stream.test_splits]
    guard_on = cfg.guard_tolerance is not None
    guard_x: list[torch.Tensor] = []
    guard_y: list[torch.Tensor] = []
    records: list[metrics.RoundRecord] = []
    cum_sec = cum_flops = 0.0
    served: torch.nn.Module | None = None
    previous: Chunk | None = None
    chunks = [stream.initial, *stream.rounds]

    for r, chunk in enumerate(progress_bar(chunks, desc=f"{cfg.method} {stream.name}", disable=not progress)):
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + r)
        served_acc = nfr = float("nan")
        if r >= 1:
            served_acc = metrics.accuracy(predict(served, chunk.x, chunk.classes), chunk.y)
        train_chunk = chunk
        if guard_on:
            train_chunk, guard_part = _split_guard(chunk, cfg.guard_fraction, gen)
            guard_x.append(guard_part.x)
            guard_y.append(guard_part.y)
        if r >= 1 and built.reinit_each_round:
            torch.manual_seed(cfg.seed * 7919 + r)
            model.load_state_dict(fresh_model().state_dict())
        ctx = RoundContext(r, model, served, train_chunk, previous, seen, device, gen, meter, heads)
        if r == 0:  # the first served model: identical for every method of a seed
            cost = _first_model(cfg, arch, model, built.regularizers, lambda ctx=ctx: retrainer.run_round(
                ctx, NewOnly(cfg.epochs_initial), AllWeights(), built.regularizers, steps=None))
        else:
            cost = retrainer.run_round(ctx, built.source, built.scope, built.regularizers,
                                       steps=cfg.steps, budget=cfg.budget)
        deployed, g_old, g_new = True, float("nan"), float("nan")
        if guard_on and r >= 1:
            gx, gy = torch.cat(guard_x), torch.cat(guard_y)
            g_old = metrics.accuracy(predict(served, gx), gy)
            g_new = metrics.accuracy(predict(model, gx), gy)
            if g_new < g_old - cfg.guard_tolerance:
                deployed = False
                model.load_state_dict(served.state_dict())
        acc = {s.name: metrics.accuracy(predict(model, s.x, s.classes), s.y)
               for s in stream.test_splits}
        if r >= 1:
            probe = stream.probe
            nfr = metrics.negative_flip_rate(probe.y, predict(served, probe.x, probe.classes),
                                             predict(model, probe.x, probe.classes))
            cum_sec += cost.retrain_seconds
            cum_flops += cost.train_flops
        records.append(metrics.RoundRecord(
            round=r, chunk=chunk.name, n_new=len(chunk), accuracy=acc,
            avg_accuracy=metrics.average_accuracy([acc[n] for n in split_names], introduced, r),
            served_accuracy=served_acc, negative_flip_rate=nfr, deployed=deployed,
            guard_accuracy_old=g_old, guard_accuracy_new=g_new,
            retrain_seconds=cost.retrain_seconds, grad_steps=cost.grad_steps,
            samples_processed=cost.samples_processed, train_flops=cost.train_flops,
            trainable_fraction=cost.trainable_fraction, peak_memory_bytes=cost.peak_memory_bytes,
            cumulative_retrain_seconds=cum_sec, cumulative_train_flops=cum_flops))
        seen.add(train_chunk, r)
        previous = train_chunk
        served = copy.deepcopy(model).eval()
        for p in served.parameters():
            p.requires_grad_(False)

    rounds = pd.DataFrame([rec.as_row() for rec in records])
    for k in ("method", "dataset", "scenario", "seed", "profile"):
        rounds.insert(0, k, getattr(cfg, k))
    tables = {}
    for name, log in (("sample_arms", getattr(built.source, "log", [])),
                      ("sample_trace", getattr(built.source, "trace", [])),
                      ("weight_groups", getattr(built.scope, "log", []))):
        if log:
            tables[name] = pd.DataFrame(log).assign(
                method=cfg.method, seed=cfg.seed, dataset=cfg.dataset, scenario=cfg.scenario,
                profile=cfg.profile)
    return rounds, tables


def stream_for(cfg: RunConfig) -> Stream:
    """Build the configured scenario's stream (data loading is memoised per process)."""
    from paperlib.data.streams import build_stream

    kw: dict[str, Any] = {"max_train": cfg.max_train, "max_test": cfg.max_test,
                          "probe_size": cfg.probe_size}
    if cfg.scenario == "data_incremental":
        kw.update(n_shards=cfg.n_shards, initial_shards=cfg.initial_shards)
    elif cfg.scenario == "class_incremental":
        kw.update(old_classes=cfg.old_classes, n_new_shards=cfg.n_new_shards)
    elif cfg.scenario == "rotated":
        kw.update(angles=tuple(cfg.rotation_step * i for i in range(cfg.n_domains)))
    elif cfg.scenario == "permuted":
        kw.update(n_domains=cfg.n_domains)
    elif cfg.scenario == "stream":
        kw = {"n_chunks": cfg.n_chunks, "initial_chunks": cfg.initial_chunks,
              "probe_size": cfg.probe_size, "max_train": cfg.max_train}
    elif cfg.scenario in ("split_task", "split_class"):
        kw.update(n_tasks=cfg.n_tasks)
    return build_stream(cfg.dataset, cfg.scenario, seed=cfg.seed, **kw)


def run(params: Mapping[str, Any] | RunConfig, *, store: bool = True, force: bool = False,
        progress: bool = False, results: Path | str | None = None) -> RunResult:
    """Validate ``params``, then return the stored result of this configuration if one exists
    (a cache hit) or simulate it and store it atomically."""
    cfg = params if isinstance(params, RunConfig) else RunConfig.from_params(params)
    pin_threads()  # $PAPERLIB_THREADS, default 1, whatever the parallelism; part of the key
    device = resolve_device(cfg.device).type
    key = cfg.key(device)
    root = Path(results) if results is not None else results_root()
    name = run_dir_name(cfg.params(), key)
    if store and not force and (hit := find_run(root, cfg.params(), key)) is not None:
        data = read_run(hit)
        tables = {k: v for k, v in data.items() if isinstance(v, pd.DataFrame) and k != "rounds"}
        return RunResult(cfg, data["rounds"], data["summary"], tables, data.get("env", {}),
                         hit, cached=True)
    stream = stream_for(cfg)
    t0 = time.perf_counter()
    rounds, tables = simulate(cfg, stream, progress=progress)
    env = environment_record(device, cfg.seed) | {"run_seconds": time.perf_counter() - t0,
                                                   "code_hash": code_hash()}
    summary = summarize(cfg, rounds, [s.learned_at for s in stream.test_splits], stream.meta)
    summary |= {"code_hash": env["code_hash"], "git_revision": env["git_revision"],
                "threads": env["cpu_threads"]}
    path = None
    if store:
        path = root / name
        summary["results_path"] = str(path)
        config_record = as_jsonable(cfg) | {"resolved_device": device, "key": key,
                                            "data": stream.meta,
                                            "key_context": key_context(cfg.dataset, device),
                                            "git_revision": env["git_revision"]}
        write_run(root, name, {"rounds": rounds, **tables},
                  {"summary": summary, "config": config_record, "env": env}, force=force)
    else:
        summary["results_path"] = None
    return RunResult(cfg, rounds, summary, tables, env, path)
