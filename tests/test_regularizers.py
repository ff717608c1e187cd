"""Tests of paperlib.method.regularizers: importance estimators against closed forms, penalties against
finite differences, and the hooks driven in the retrainer's documented order (plugins.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import mlp
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.samples import SeenData
from paperlib.method.regularizers import (
    EWC,
    MAS,
    REGULARIZERS,
    L2Anchor,
    OnlineEWC,
    SynapseNeuronImportance,
    SynapticIntelligence,
    fisher_diagonal,
    make_regularizer,
    mas_importance,
    masked_logits,
    neuron_importance,
    squared_batch_gradients,
)

DT = torch.float64


# --------------------------------------------------------------------------------------------
# A tiny harness that calls the hooks in the order documented in paperlib/engine/plugins.py
# --------------------------------------------------------------------------------------------


def make_chunk(n: int, seed: int, classes: tuple[int, ...] | None = None) -> Chunk:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=DT)
    y = torch.randint(0, 3, (n,), generator=g)
    return Chunk(x, y, f"chunk {seed}", classes)


def serve(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval().requires_grad_(False)


def make_step(ctx: RoundContext, x: torch.Tensor, y: torch.Tensor, t: int = 0) -> StepContext:
    logits, hidden = ctx.model(x, return_hidden=True)
    loss = F.cross_entropy(masked_logits(logits, ctx.new_chunk.classes), y)
    return StepContext(ctx, t, x, y, logits, loss, hidden)


class Sim:
    """Rounds of plain SGD on tiny float64 MLPs, serving a frozen copy after each round."""

    def __init__(self, plugin: Plugin, widths: tuple[int, ...] = (5,), seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.plugin = plugin
        self.model = mlp((4,), 3, widths=widths)
        self.meter = ComputeMeter(self.model, input_shape=(4,))   # measures in float32
        self.model.to(DT)
        self.seen = SeenData()
        self.served: list[nn.Module] = []
        self.chunks: list[Chunk] = []

    def begin(self, chunk: Chunk) -> RoundContext:
        """Build the round's context and call ``before_round``."""
        r = len(self.chunks)
        ctx = RoundContext(
            round_index=r, model=self.model, served_model=self.served[-1] if r else None,
            new_chunk=chunk, previous_chunk=self.chunks[-1] if r else None, seen=self.seen,
            device=torch.device("cpu"), generator=torch.Generator().manual_seed(100 + r),
            meter=self.meter)
        self.meter.start_round()
        self.plugin.before_round(ctx)
        return ctx

    def run_round(self, chunk: Chunk, steps: int = 4, lr: float = 0.1, batch: int = 8) -> None:
        ctx = self.begin(chunk)
        opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        for t in range(steps):
            idx = torch.arange(t * batch, (t + 1) * batch) % len(chunk)
            step = make_step(ctx, chunk.x[idx], chunk.y[idx], t)
            pen = self.plugin.penalty(step)
            total = step.loss if pen is None else step.loss + pen
            opt.zero_grad(set_to_none=True)
            total.backward()
            self.plugin.before_update(step)
            opt.step()
            self.plugin.after_step(step)
        self.plugin.after_round(ctx)
        self.seen.add(chunk, len(self.chunks))
        self.served.append(serve(self.model))
        self.chunks.append(chunk)


CONFIGS = {
    "sni": lambda: SynapseNeuronImportance(lam=10.0, lam_synapse=1.0, lam_neuron=1.0),
    "sni_batch": lambda: SynapseNeuronImportance(lam_synapse=1.0, lam_neuron=1.0,
                                                 neuron_mode="batch"),
    "sni_mas": lambda: SynapseNeuronImportance(importance="mas", importance_samples=16),
    "sni_si": lambda: SynapseNeuronImportance(importance="si"),
    "ewc": lambda: EWC(),
    "online_ewc": lambda: OnlineEWC(),
    "si": lambda: SynapticIntelligence(),
    "mas": lambda: MAS(),
    "l2": lambda: L2Anchor(lam=1.0, use_neuron_term=True),
}


def trained_sim(name: str, rounds: int = 2) -> tuple[Sim, RoundContext]:
    """``rounds`` rounds of training, then round ``rounds`` begun (``before_round`` called)."""
    sim = Sim(CONFIGS[name]())
    for r in range(rounds):
        sim.run_round(make_chunk(24, seed=r))
    return sim, sim.begin(make_chunk(24, seed=rounds))


def perturb(model: nn.Module, scale: float = 0.1, seed: int = 7) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


# --------------------------------------------------------------------------------------------
# Penalties: gradients, zero points, composition
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
def test_penalty_gradient_matches_finite_differences(name: str) -> None:
    """Directional derivatives along random directions (every parameter moves) agree with
    central differences in float64."""
    sim, ctx = trained_sim(name)
    perturb(sim.model)
    x, y = ctx.new_chunk.x[:8], ctx.new_chunk.y[:8]
    params = list(sim.model.parameters())
    pen = sim.plugin.penalty(make_step(ctx, x, y))
    grads = torch.autograd.grad(pen, params)
    assert pen.item() > 0 and all(g.abs().sum() > 0 for g in grads[-2:])
    g = torch.Generator().manual_seed(0)
    eps = 1e-6
    for _ in range(6):
        direction = [torch.randn(p.shape, generator=g, dtype=DT) for p in params]
        values = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, d in zip(params, direction, strict=True):
                    p.add_(sign * eps * d)
                values.append(sim.plugin.penalty(make_step(ctx, x, y)).item())
                for p, d in zip(params, direction, strict=True):
                    p.sub_(sign * eps * d)
        analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, direction, strict=True))
        assert analytic == pytest.approx((values[0] - values[1]) / (2 * eps), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_penalty_zero_in_round_0_and_at_served_weights(name: str) -> None:
    sim = Sim(CONFIGS[name]())
    chunk = make_chunk(24, seed=0)
    ctx0 = sim.begin(chunk)
    pen0 = sim.plugin.penalty(make_step(ctx0, chunk.x[:8], chunk.y[:8]))
    assert pen0 is None or pen0.item() == 0.0
    sim.run_round(chunk)
    ctx = sim.begin(make_chunk(24, seed=1))   # round 1 (EWC has older anchors from round 2 on)
    x, y = ctx.new_chunk.x[:8], ctx.new_chunk.y[:8]
    assert sim.plugin.penalty(make_step(ctx, x, y)).item() == 0.0
    perturb(sim.model)
    assert sim.plugin.penalty(make_step(ctx, x, y)).item() > 0.0


def test_frozen_parameters_are_skipped_without_changing_gradients() -> None:
    sim, ctx = trained_sim("sni")
    perturb(sim.model)
    x, y = ctx.new_chunk.x[:8], ctx.new_chunk.y[:8]
    head = sim.model.blocks["head"].weight
    full = torch.autograd.grad(sim.plugin.penalty(make_step(ctx, x, y)), head)[0]
    first = sim.model.blocks["fc1"][1].weight
    first.requires_grad_(False)
    part = torch.autograd.grad(sim.plugin.penalty(make_step(ctx, x, y)), head)[0]
    torch.testing.assert_close(full, part)


def test_sni_without_neuron_term_is_the_fisher_synapse_term() -> None:
    plugin = SynapseNeuronImportance(lam=2.0, lam_synapse=0.5, use_neuron_term=False,
                                     importance_samples=10_000)
    assert not plugin.needs_hidden
    sim = Sim(plugin)
    sim.run_round(make_chunk(24, seed=0))
    ctx = sim.begin(make_chunk(24, seed=1))
    perturb(sim.model)
    step = make_step(ctx, ctx.new_chunk.x[:8], ctx.new_chunk.y[:8])
    # 24 seen samples < one mini-batch of 128: the authors' estimator is the squared gradient
    # of the mean loss over all of them, whatever order they were drawn in.
    fisher = squared_batch_gradients(sim.served[-1], sim.seen.x, sim.seen.y)
    old = dict(sim.served[-1].named_parameters())
    per_tensor = [(fisher[n] * (p - old[n]).pow(2)).sum() for n, p in sim.model.named_parameters()]
    expected = 2.0 * 0.5 * torch.stack(per_tensor).mean()
    torch.testing.assert_close(plugin.penalty(step), expected)


def test_squared_batch_gradients_by_hand() -> None:
    torch.manual_seed(0)
    model = mlp((4,), 3, widths=(5,))
    x, y = torch.randn(6, 4), torch.randint(0, 3, (6,))
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for s in (slice(0, 4), slice(4, 6)):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[s]), y[s]).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad.pow(2) / 2
    got = squared_batch_gradients(model, x, y, batch_size=4)
    for n in expected:
        torch.testing.assert_close(got[n], expected[n])


def test_sni_batch_mode_reports_more_flops_than_round_mode() -> None:
    flops = {}
    for mode in ("round", "batch"):
        sim = Sim(SynapseNeuronImportance(neuron_mode=mode, importance_samples=8))
        sim.run_round(make_chunk(24, seed=0))
        sim.run_round(make_chunk(24, seed=1), steps=6)
        flops[mode] = sim.meter.flops
    assert flops["batch"] > flops["round"] > 0


def test_ewc_keeps_one_anchor_per_round_and_online_ewc_one() -> None:
    ewc, online = Sim(EWC(importance_samples=10_000)), Sim(OnlineEWC(importance_samples=10_000))
    for sim in (ewc, online):
        for r in range(4):
            sim.run_round(make_chunk(24, seed=r))
        sim.begin(make_chunk(24, seed=4))
    assert len(ewc.plugin.tasks) == 4                      # rounds 1..4
    for (anchor, fisher), served, chunk in zip(ewc.plugin.tasks, ewc.served, ewc.chunks,
                                               strict=True):
        torch.testing.assert_close(fisher, fisher_diagonal(served, chunk.x, chunk.y))
        torch.testing.assert_close(anchor, {n: p for n, p in served.named_parameters()})
    expected = None
    for served, chunk in zip(online.served, online.chunks, strict=True):
        f = fisher_diagonal(served, chunk.x, chunk.y)
        expected = f if expected is None else {n: 0.9 * expected[n] + f[n] for n in f}
    torch.testing.assert_close(online.plugin.importance, expected)
    torch.testing.assert_close(online.plugin.anchor, dict(online.served[-1].named_parameters()))


def test_mas_accumulates_by_sum() -> None:
    sim = Sim(MAS(importance_samples=10_000))
    for r in range(3):
        sim.run_round(make_chunk(24, seed=r))
    sim.begin(make_chunk(24, seed=3))
    parts = [mas_importance(s, c.x) for s, c in zip(sim.served, sim.chunks, strict=True)]
    torch.testing.assert_close(sim.plugin.importance, {n: sum(p[n] for p in parts)
                                                       for n in parts[0]})


# --------------------------------------------------------------------------------------------
# Importance estimators against closed forms
# --------------------------------------------------------------------------------------------


def linear_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A linear model ``z = W x + b`` (no hidden block), inputs, labels and logits."""
    torch.manual_seed(3)
    model = mlp((4,), 3, widths=()).to(DT).eval()
    x = torch.randn(10, 4, dtype=DT)
    y = torch.randint(0, 3, (10,))
    with torch.no_grad():
        z = model(x)
    return model, x, y, z


def test_fisher_of_linear_model_matches_closed_form() -> None:
    model, x, y, z = linear_case()
    err = torch.softmax(z, 1) - F.one_hot(y, 3)             # d(-log p_y)/dz, (N, C)
    fisher = fisher_diagonal(model, x, y, batch_size=3)     # 3: several vmap chunks
    torch.testing.assert_close(fisher["blocks.head.weight"],
                               (err[:, :, None] * x[:, None, :]).pow(2).mean(0))
    torch.testing.assert_close(fisher["blocks.head.bias"], err.pow(2).mean(0))


def test_fisher_with_classes_uses_the_head_softmax() -> None:
    model, x, _, z = linear_case()
    y = torch.arange(10) % 2
    err = torch.softmax(z[:, :2], 1) - F.one_hot(y, 2)
    fisher = fisher_diagonal(model, x, y, classes=(0, 1))
    torch.testing.assert_close(fisher["blocks.head.bias"][:2], err.pow(2).mean(0))
    assert float(fisher["blocks.head.bias"][2]) == 0.0
    mask = torch.tensor([True, True, False]).expand(10, 3)  # the same head, given per sample
    torch.testing.assert_close(fisher_diagonal(model, x, y, classes=mask), fisher)


def test_mas_of_linear_model_matches_closed_form() -> None:
    model, x, _, z = linear_case()
    omega = mas_importance(model, x, batch_size=4)
    torch.testing.assert_close(omega["blocks.head.weight"],
                               (z[:, :, None] * x[:, None, :]).abs().mean(0))
    torch.testing.assert_close(omega["blocks.head.bias"], z.abs().mean(0))


def test_neuron_importance_of_linear_model_matches_closed_form() -> None:
    model, x, y, z = linear_case()
    (omega,) = neuron_importance(model, x, y, batch_size=4)
    torch.testing.assert_close(omega, (torch.softmax(z, 1) - F.one_hot(y, 3)).pow(2).mean(0))


def test_estimators_match_per_sample_loops_and_leave_no_grad() -> None:
    torch.manual_seed(5)
    model = mlp((4,), 3, widths=(6, 5))
    meter = ComputeMeter(model, input_shape=(4,))
    model.to(DT)
    x, y = torch.randn(7, 4, dtype=DT), torch.randint(0, 3, (7,))
    meter.start_round()
    fisher = fisher_diagonal(model, x, y, batch_size=2, meter=meter)
    hidden_imp = neuron_importance(model, x, y, batch_size=3, meter=meter)
    fwd = meter.forward_flops_per_sample  # fisher: to the weights; neurons: to the blocks
    assert meter.flops == pytest.approx(7 * (2 * fwd + meter.backward_flops_per_sample
                                             + meter.activation_backward_flops_per_sample))
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    params = list(model.parameters())
    loop_f = [torch.zeros_like(p) for p in params]
    loop_h = [torch.zeros(6, dtype=DT), torch.zeros(5, dtype=DT), torch.zeros(3, dtype=DT)]
    for i in range(7):
        logits, hidden = model(x[i:i + 1], return_hidden=True)
        loss = F.cross_entropy(logits, y[i:i + 1])
        gs = torch.autograd.grad(loss, params + hidden)
        for k, g in enumerate(gs[:len(params)]):
            loop_f[k] += g.pow(2) / 7
        for k, g in enumerate(gs[len(params):]):
            loop_h[k] += g[0].pow(2) / 7
    for (n, _), expected in zip(model.named_parameters(), loop_f, strict=True):
        torch.testing.assert_close(fisher[n], expected)
    for got, expected in zip(hidden_imp, loop_h, strict=True):
        torch.testing.assert_close(got, expected)


# --------------------------------------------------------------------------------------------
# Synaptic Intelligence on a quadratic loss
# --------------------------------------------------------------------------------------------


class Quadratic(nn.Module):
    """``L(theta) = 1/2 sum_i a_i theta_i^2`` over the parameter ``theta``; ``frozen`` is
    in the loss but never trained, ``unused`` gets no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=DT))
        self.frozen = nn.Parameter(torch.tensor([3.0], dtype=DT), requires_grad=False)
        self.unused = nn.Parameter(torch.tensor([1.0], dtype=DT))
        self.a = torch.tensor([1.0, 0.5, 2.0], dtype=DT)

    def loss(self) -> torch.Tensor:
        return 0.5 * (self.a * self.theta.pow(2)).sum() + self.frozen.pow(2).sum()


def si_round(si: SynapticIntelligence, model: Quadratic, r: int, steps: int, lr: float) -> None:
    dummy = torch.zeros(1, dtype=DT)
    ctx = RoundContext(r, model, None if r == 0 else copy.deepcopy(model), Chunk(dummy, dummy, "-"),
                       None, SeenData(), torch.device("cpu"), torch.Generator(), None)
    si.before_round(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for t in range(steps):
        loss = model.loss()
        step = StepContext(ctx, t, dummy, dummy, dummy, loss)
        pen = si.penalty(step)
        opt.zero_grad(set_to_none=True)
        (loss if pen is None else loss + pen).backward()
        si.before_update(step)
        opt.step()
        si.after_step(step)
    si.after_round(ctx)


@pytest.mark.parametrize("task_gradient", [True, False])
def test_si_path_integral_matches_hand_computation(task_gradient: bool) -> None:
    lr, steps, xi, c = 0.1, 5, 0.1, 0.7
    model, si = Quadratic(), SynapticIntelligence(lam=c, xi=xi, task_gradient=task_gradient)
    a, theta = model.a, model.theta.detach().clone()
    start, omega = theta.clone(), torch.zeros(3, dtype=DT)
    for _ in range(steps):                                  # round 0: no penalty
        g = a * theta
        delta = -lr * g
        omega -= g * delta
        theta = theta + delta
    big_omega = omega / ((theta - start).pow(2) + xi)
    si_round(si, model, 0, steps, lr)
    si_round(si, model, 1, steps, lr)                       # consolidates round 0 first
    torch.testing.assert_close(si.path.importance["theta"], big_omega)
    anchor, start, omega = theta.clone(), theta.clone(), torch.zeros(3, dtype=DT)
    for _ in range(steps):                                  # round 1: with SI's own penalty
        g_task = a * theta
        g_total = g_task + 2 * c * big_omega * (theta - anchor)
        delta = -lr * g_total
        omega -= (g_task if task_gradient else g_total) * delta
        theta = theta + delta
    torch.testing.assert_close(model.theta.detach(), theta)
    si.before_round(RoundContext(2, model, model, Chunk(a, a, "-"), None, SeenData(),
                                 torch.device("cpu"), torch.Generator(), None))
    expected = big_omega + omega / ((theta - start).pow(2) + xi)
    torch.testing.assert_close(si.path.importance["theta"], expected)
    assert float(si.path.importance["frozen"]) == 0.0       # requires_grad False
    assert float(si.path.importance["unused"]) == 0.0       # grad None


def test_si_importance_after_round_0() -> None:
    lr, steps, xi = 0.05, 3, 0.1
    model, si = Quadratic(), SynapticIntelligence(xi=xi)
    a, theta0 = model.a, model.theta.detach().clone()
    si_round(si, model, 0, steps, lr)
    si_round(si, model, 1, 0, lr)
    thetas = [theta0 * (1 - lr * a) ** t for t in range(steps + 1)]
    omega = sum(lr * a.pow(2) * th.pow(2) for th in thetas[:steps])
    torch.testing.assert_close(si.path.importance["theta"],
                               omega / ((thetas[-1] - theta0).pow(2) + xi))


# --------------------------------------------------------------------------------------------
# Registry and validation
# --------------------------------------------------------------------------------------------


def test_registry_builds_every_regulariser() -> None:
    for name, cls in REGULARIZERS.items():
        reg = make_regularizer(name)
        assert isinstance(reg, cls) and reg.name == name
    assert make_regularizer("sni", lam_neuron=0.5).lam_neuron == 0.5


def test_bad_names_and_hyper_parameters_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="sni, ewc, online_ewc, si, mas, l2"):
        make_regularizer("nope")
    with pytest.raises(ValueError, match="lam_neuron") as err:
        make_regularizer("sni", lam_neurons=1.0)
    assert "lam_neurons" in str(err.value)
    with pytest.raises(ValueError, match="fisher, mas, si"):
        SynapseNeuronImportance(importance="l1")
    with pytest.raises(ValueError, match="round, batch"):
        SynapseNeuronImportance(neuron_mode="epoch")
    with pytest.raises(ValueError, match="lam"):
        EWC(lam=-1.0)


@pytest.mark.parametrize("with_omega", [True, False])
def test_quadratic_value_and_hand_written_gradient_match_autograd(with_omega):
    """``_quadratic``'s value and its hand-written backward equal the plain autograd formula
    (double precision), frozen parameters are skipped, and gradcheck passes."""
    from paperlib.method.importance import _quadratic, _WeightedSquares

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)).double()
    net[2].bias.requires_grad_(False)
    anchor = {n: p.detach() + 0.1 * torch.randn_like(p) for n, p in net.named_parameters()}
    omega = {n: torch.rand_like(p) for n, p in net.named_parameters()} if with_omega else None
    value = _quadratic(net, anchor, omega)
    value.backward()
    got = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()
    expected = sum(((omega[n] if omega else 1.0) * (p - anchor[n]).pow(2)).sum()
                   for n, p in net.named_parameters() if p.requires_grad)
    expected.backward()
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    assert set(got) == {n for n, p in net.named_parameters() if p.requires_grad}
    for n, p in net.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(got[n], p.grad)
    params = [p for p in net.parameters() if p.requires_grad]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    extra = [anchor[n] for n in names] + ([omega[n] for n in names] if omega else [])
    assert torch.autograd.gradcheck(lambda *ps: _WeightedSquares.apply(len(ps), *ps, *extra),
                                    tuple(p.detach().clone().requires_grad_() for p in params))


# --------------------------------------------------------------------------------------------
# Each importance pass is charged what it computes (FlopCounterMode counts the matmuls run)
# --------------------------------------------------------------------------------------------


def _metered_and_counted(estimate) -> tuple[float, float]:  # noqa: ANN001
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = mlp((6,), 4, widths=(16, 8))
    meter = ComputeMeter(model, input_shape=(6,))
    x, y = torch.randn(24, 6), torch.randint(0, 4, (24,))
    with FlopCounterMode(display=False) as counter:
        estimate(model, x, y, meter)
    return meter.flops, float(counter.get_total_flops())


@pytest.mark.parametrize("name", ["fisher", "squared_batch", "mas", "neurons"])
def test_importance_passes_are_charged_what_they_compute(name: str) -> None:
    """A pass to the weights costs a training step's backward (no gradient for the data), a
    neuron-importance pass only the input gradients above the first block; both used to be
    charged a full 2-forward backward (the first layer's input gradient, never computed)."""
    estimate = {
        "fisher": lambda m, x, y, meter: fisher_diagonal(m, x, y, meter=meter),
        "squared_batch": lambda m, x, y, meter: squared_batch_gradients(m, x, y, meter=meter),
        "mas": lambda m, x, y, meter: mas_importance(m, x, meter=meter),
        "neurons": lambda m, x, y, meter: neuron_importance(m, x, y, meter=meter),
    }[name]
    metered, counted = _metered_and_counted(estimate)
    assert metered == pytest.approx(counted, rel=1e-9)
