"""Benchmark part 3 (``make bench``): each rival's cost per training step as a ratio to plain
replay, measured side by side: metered FLOPs (what the equal-compute budget charges) and
wall-clock seconds.

Setting: the quick profile's MLP (784-256-256-10) on MNIST-shaped random data, Adam, batch 64,
a memory of 2000 samples seeded from 6000 past samples, a served model (LwF's teacher). Each
method first runs a short warm-up round (its memory fills, DER stores logits), then ``steps``
timed steps in a second round. Methods run in a rotating order in every repeat; the table shows
medians over repeats.

``python -m paperlib.repro.bench_rivals --steps 100 --repeats 5``
"""

from __future__ import annotations

import argparse
import copy
import statistics
from typing import Any

import torch

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import build_model
from paperlib.engine.plugins import RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import SeenData
from paperlib.method.methods import build_method

RIVALS = ("replay", "mir", "gss", "der", "derpp", "er_ace", "lwf")
INPUT = (1, 28, 28)


def _chunk(n: int, seed: int, device: torch.device) -> Chunk:
    g = torch.Generator().manual_seed(seed)
    return Chunk(torch.rand(n, *INPUT, generator=g).to(device),
                 torch.randint(0, 10, (n,), generator=g).to(device), f"bench {seed}")


class _Case:
    """One method, warmed up: its memory is full and its teacher set."""

    def __init__(self, method: str, device: torch.device) -> None:
        torch.manual_seed(0)
        self.model = build_model("mlp", INPUT, 10).to(device)
        self.served = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.meter = ComputeMeter(self.model, INPUT)
        self.built = build_method(method, {}, epochs=1.0, seed=0)
        self.retrainer = Retrainer(TrainSettings(batch_size=64, lr=1e-3))
        self.seen = SeenData(capacity=None, device=device)
        self.seen.add(_chunk(6000, 1, device), 0)
        self.new, self.device = _chunk(1200, 2, device), device
        self.round(1, steps=10)

    def round(self, r: int, steps: int) -> tuple[float, float]:
        """Run ``steps`` steps of round ``r``; returns (FLOPs per step, seconds per step)."""
        ctx = RoundContext(r, self.model, self.served, self.new, None, self.seen, self.device,
                           torch.Generator().manual_seed(r), self.meter)
        b = self.built
        cost = self.retrainer.run_round(ctx, b.source, b.scope, b.regularizers, steps=steps)
        return cost.train_flops / steps, cost.retrain_seconds / steps


def bench_rivals(device: torch.device, steps: int = 100, repeats: int = 5,
                 methods: tuple[str, ...] = RIVALS) -> list[dict[str, Any]]:
    """Rows ``method, flops_per_step, flop_ratio, ms_per_step, time_ratio`` (ratios to
    ``replay``; medians over ``repeats`` rounds of ``steps`` steps, rotating the order)."""
    if "replay" not in methods:
        methods = ("replay", *methods)
    cases = {m: _Case(m, device) for m in methods}
    flops: dict[str, list[float]] = {m: [] for m in methods}
    secs: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(repeats):
        order = methods[r % len(methods):] + methods[: r % len(methods)]
        for m in order if r % 2 == 0 else order[::-1]:
            f, s = cases[m].round(2 + r, steps)
            flops[m].append(f)
            secs[m].append(s)
    f0, s0 = statistics.median(flops["replay"]), statistics.median(secs["replay"])
    return [{"method": m, "flops_per_step": statistics.median(flops[m]),
             "flop_ratio": statistics.median(flops[m]) / f0,
             "ms_per_step": 1e3 * statistics.median(secs[m]),
             "time_ratio": statistics.median(secs[m]) / s0} for m in methods]


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - CLI
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    from paperlib.engine.models import resolve_device
    from paperlib.repro.bench_table import _print_table

    rows = bench_rivals(resolve_device(a.device), a.steps, a.repeats)
    _print_table(rows, ["method", "flops_per_step", "flop_ratio", "ms_per_step", "time_ratio"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
