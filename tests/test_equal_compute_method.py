"""The paper's method pays only for its idea (issue 8): the reward and the neuron term make no
uncharged or unneeded passes, memory is bounded, frozen batch norm stays frozen, the weight
bandit keeps the head and logs its k-set's inclusion probabilities, SI under clipping, and the
learning-rate schedule."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.bandits import make_policy
from paperlib.engine.models import lenet, mlp
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import NewOnly, SampleBandit, SeenData
from paperlib.engine.weights import AllWeights, FixedSubset, WeightBandit, inclusion_probabilities
from paperlib.method.regularizers import SynapseNeuronImportance, SynapticIntelligence

SHAPE = (1, 8, 8)


def _chunk(n, classes, seed, name="c"):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=g)]
    return Chunk(torch.rand(n, *SHAPE, generator=g), y, name)


def _ctx(model, new, seen, r=1, served=None):
    return RoundContext(r, model, served, new, None, seen, torch.device("cpu"),
                        torch.Generator().manual_seed(r), ComputeMeter(model, SHAPE))


class ForwardCounter:
    """Counts calls of a module's ``forward`` and the samples they saw."""

    def __init__(self, module):
        self.calls = self.samples = 0
        module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.calls += 1
        self.samples += len(args[0])


def _seen_two_rounds():
    seen = SeenData()
    seen.add(_chunk(120, [0, 1, 2], 0), 0)
    seen.add(_chunk(120, [3, 4, 5], 1), 1)
    return seen


@pytest.mark.parametrize("reward, extra_per_step", [("visit_progress", 0), ("batch_progress", 1),
                                                    ("holdout", 1)])
def test_reward_passes_are_counted_and_visit_progress_needs_none(reward, extra_per_step):
    torch.manual_seed(0)
    model = mlp(SHAPE, 10, widths=(16,))
    ctx = _ctx(model, _chunk(96, [6, 7], 2), _seen_two_rounds(), r=2)
    counter = ForwardCounter(model)  # after the meter's own measuring pass
    source = SampleBandit(reward=reward, holdout_size=40, memory_size=None)
    steps, batch = 12, 16
    cost = Retrainer(TrainSettings(batch_size=batch)).run_round(ctx, source, AllWeights(), [],
                                                                steps=steps)
    setup = 1 if reward == "holdout" else 0  # the held-out loss before the first update
    assert counter.calls == steps * (1 + extra_per_step) + setup
    extra_samples = counter.samples - steps * batch
    expected = cost.grad_steps * ctx.meter.step_flops(batch, ctx.meter.group_names)
    expected += extra_samples * ctx.meter.forward_flops_per_sample
    assert cost.train_flops == pytest.approx(expected)
    if reward == "visit_progress":
        assert extra_samples == 0
    # every arm pulled twice or more got a reward; first visits give none (no forced zero)
    rewarded = sum(source.n_rewards)
    assert rewarded == steps - (len([p for p in source.pulls if p]) if reward == "visit_progress"
                                else 0)


def test_holdout_reward_uses_every_charged_loss_and_rewards_the_first_step():
    from paperlib.engine.rewards import HoldoutProgress

    class Recording(HoldoutProgress):
        def start_round(self, ctx):
            super().start_round(ctx)
            self.first, self.raws = self.prev, []

        def __call__(self, ctx, arm, loss):
            self.raws.append(super().__call__(ctx, arm, loss))
            return self.raws[-1]

    torch.manual_seed(0)
    model = mlp(SHAPE, 10, widths=(16,))
    ctx = _ctx(model, _chunk(96, [6, 7], 2), _seen_two_rounds(), r=2)
    source = SampleBandit(reward="holdout", holdout_size=40, memory_size=None)
    source.reward_fn = rec = Recording()
    Retrainer(TrainSettings(batch_size=16, lr=1e-2)).run_round(ctx, source, AllWeights(), [],
                                                               steps=5)
    assert len(rec.raws) == 5 and rec.raws[0] != 0.0, "the first step's reward is measured"
    # the rewards telescope: every measured (charged) held-out loss is used
    assert sum(rec.raws) == pytest.approx(rec.first - rec.prev)


def test_sample_bandit_memory_is_bounded_and_grouped_by_arrival():
    model = mlp(SHAPE, 10, widths=(8,))
    seen = SeenData()
    source = SampleBandit(memory_size=50, grouping="loss")
    scoring = []
    for r in range(1, 6):
        chunk = _chunk(80, [r % 10], r)
        ctx = _ctx(model, chunk, seen, r=r, served=model)
        before = ctx.meter.flops
        source.start_round(ctx, batch_size=8)
        scoring.append(ctx.meter.flops - before)
        assert len(source.pool[1]) <= 50 + 80
        for _ in range(5):
            x, y, arm = source.next_batch()
            assert torch.equal(x, source.pool[0][source.last_index])
        source.end_round(ctx)
        seen.add(chunk, r)
        assert len(source.memory) == min(50, len(seen))
    assert len(set(scoring[1:])) == 1, "scoring the memory costs the same every round"
    assert set(source.memory.arrival.tolist()) <= set(range(1, 6))
    # grouping by chunk keeps each stored sample's arrival round; mixed batches (the default)
    # make the memory's rounds the only arms, new_share=0 adds the new chunk as arm 0
    for share, first in ((0.5, []), (0.0, ["new"])):
        by_chunk = SampleBandit(memory_size=50, new_share=share)
        by_chunk.start_round(_ctx(model, _chunk(10, [9], 9), seen, r=6), batch_size=8)
        names = by_chunk.arm_names
        assert names[:len(first)] == first and len(names) - len(first) > 1
        assert all(n.startswith("round ") for n in names[len(first):])


def test_frozen_batch_norm_statistics_do_not_move():
    for freeze in (True, False):
        torch.manual_seed(0)
        model = lenet(SHAPE, 10, channels=(4, 8), fc_width=16)
        frozen = {n: b.clone() for n, b in model.named_buffers() if "running_mean" in n}
        ctx = _ctx(model, _chunk(64, list(range(10)), 3), SeenData())
        Retrainer(TrainSettings(batch_size=16, freeze_bn_stats=freeze)).run_round(
            ctx, NewOnly(1), FixedSubset(("head",)), [], steps=6)
        moved = max(float((dict(model.named_buffers())[n] - b).abs().max())
                    for n, b in frozen.items())
        assert (moved == 0.0) == freeze, f"freeze_bn_stats={freeze}: moved {moved}"
        assert all(m.training for m in model.modules()), "train mode restored after the round"


def test_neuron_term_cache_matches_the_per_step_pass_without_a_served_forward_per_step():
    torch.manual_seed(0)
    served = mlp(SHAPE, 10, widths=(16, 8))
    model = mlp(SHAPE, 10, widths=(16, 8))
    model.load_state_dict(served.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    counter = ForwardCounter(served)
    seen = _seen_two_rounds()
    steps, batch = 10, 16
    results = {}
    for cache in (True, False):
        reg = SynapseNeuronImportance(lam_synapse=0.0, neuron_cache=cache, importance_samples=32)
        ctx = _ctx(model, _chunk(64, [6, 7], 2), seen, r=2, served=served)
        source = NewOnly(1)
        source.start_round(ctx, batch)
        ctx.batch_pool = source.pool
        reg.before_round(ctx)
        counter.calls, before = 0, ctx.meter.flops
        values = []
        for step in range(steps):
            x, y, _ = source.next_batch()
            logits, hidden = model(x, return_hidden=True)
            loss = F.cross_entropy(logits, y)
            sc = StepContext(ctx, step, x, y, logits, loss, hidden, -1, source.last_index)
            values.append(float(reg.penalty(sc).detach()))
        results[cache] = (counter.calls, ctx.meter.flops - before, values)
    fwd = ComputeMeter(model, SHAPE).forward_flops_per_sample
    assert results[False][0] == steps and results[False][1] == steps * batch * fwd
    # 64 pool rows, all anchors (256 >= 64): one served forward of all of them, charged once
    assert results[True][0] == 1 and results[True][1] == 64 * fwd
    np.testing.assert_allclose(results[True][2], results[False][2], rtol=1e-5)


def test_weight_bandit_trains_the_head_always_and_logs_k_set_inclusion():
    torch.manual_seed(0)
    model = mlp(SHAPE, 10, widths=(16, 8, 8))  # groups fc1 fc2 fc3 head
    scope = WeightBandit(k_groups=2, reselect_every=3, seed=0)
    ctx = _ctx(model, _chunk(128, list(range(10)), 4), SeenData())
    Retrainer(TrainSettings(batch_size=16)).run_round(ctx, NewOnly(1), scope, [], steps=15)
    periods = {}
    for row in scope.log:
        periods.setdefault(row["step"], {})[row["group"]] = (row["trained"], row["probability"])
    assert len(periods) == 5
    for rows in periods.values():
        assert rows["head"] == (True, 1.0)
        assert sum(t for t, _ in rows.values()) == 2
        assert sum(p for _, p in rows.values()) == pytest.approx(2.0)
    off = WeightBandit(k_groups=2, reselect_every=3, seed=0, train_head_always=False)
    Retrainer(TrainSettings(batch_size=16)).run_round(
        _ctx(model, _chunk(128, list(range(10)), 4), SeenData()), NewOnly(1), off, [], steps=15)
    head = [r for r in off.log if r["group"] == "head"]
    assert all(r["probability"] < 1.0 for r in head), "without the switch the head is an arm"
    for s in {r["step"] for r in off.log}:
        assert sum(r["probability"] for r in off.log if r["step"] == s) == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["exp3m", "exp3s", "epsilon_greedy", "thompson", "ucb1"])
def test_inclusion_probabilities_match_the_k_sets_drawn(name):
    kw = {"k": 2} if name == "exp3m" else {}
    policy = make_policy(name, 4, seed=1, **kw)
    for _ in range(30):
        arms = policy.pull_k(2)
        policy.update_k(arms, [1.0 if a == 0 else 0.2 for a in arms])
    p = inclusion_probabilities(policy, 2)
    assert p.sum() == pytest.approx(2.0, abs=1e-9) and (p >= 0).all() and (p <= 1 + 1e-9).all()
    import copy

    clone, counts = copy.deepcopy(policy), np.zeros(4)
    for _ in range(4000):
        counts[clone.pull_k(2)] += 1
    np.testing.assert_allclose(p, counts / 4000, atol=0.04)


class _Quad(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor([3.0, -2.0]))

    def forward(self, x, return_hidden=False):
        return (x * self.theta).sum(1, keepdim=True).expand(-1, 2) * torch.tensor([1.0, -1.0])

    def parameter_groups(self):
        return {"all": [self.theta]}


class _TaskPath(Plugin):
    """Reference: -sum g_task * delta_theta with the unclipped task-loss gradient."""

    def __init__(self):
        self.omega = torch.zeros(2)

    def penalty(self, step):
        (self.g,) = torch.autograd.grad(step.loss, [step.round.model.theta], retain_graph=True)

    def before_update(self, step):
        self.before = step.round.model.theta.detach().clone()

    def after_step(self, step):
        self.omega -= self.g * (step.round.model.theta.detach() - self.before)


def test_si_path_integral_uses_the_unclipped_task_gradient_under_clipping():
    torch.manual_seed(0)
    model = _Quad()
    x, y = torch.randn(64, 2) * 5, torch.randint(0, 2, (64,))
    meter = ComputeMeter(model, (2,))
    si, ref = SynapticIntelligence(lam=5.0, xi=0.1), _TaskPath()
    scales = []
    spy = type("Spy", (Plugin,), {"before_update": lambda self, st: scales.append(
        float(st.grad_scale))})()
    for r in range(2):
        ctx = RoundContext(r, model, None, Chunk(x, y, "c"), None, SeenData(),
                           torch.device("cpu"), torch.Generator().manual_seed(r), meter)
        ref.omega = torch.zeros(2)
        clip = TrainSettings(batch_size=16, lr=0.5, optimizer="sgd", grad_clip=0.01)
        Retrainer(clip).run_round(ctx, NewOnly(1), AllWeights(), [si, ref, spy], steps=8)
    assert si.anchor is not None and si.path.importance, "the penalty was active in round 1"
    assert max(scales) < 0.5, "clipping was active"
    torch.testing.assert_close(si.path.omega["theta"], ref.omega, rtol=1e-4, atol=1e-6)


def test_warmup_cosine_schedule_rewarms_every_round():
    from paperlib.engine.retrain import lr_factor

    first_step = {}
    for schedule in ("constant", "warmup_cosine"):
        torch.manual_seed(0)
        model = mlp(SHAPE, 10, widths=(8,))
        start = [p.detach().clone() for p in model.parameters()]
        ctx = _ctx(model, _chunk(64, list(range(10)), 5), SeenData())
        settings = TrainSettings(batch_size=16, lr=1e-2, grad_clip=None, lr_schedule=schedule)
        Retrainer(settings).run_round(ctx, NewOnly(1), AllWeights(), [], steps=1)
        first_step[schedule] = sum(float((p.detach() - s).abs().sum())
                                   for p, s in zip(model.parameters(), start, strict=True))
    # one expected step: warm-up factor lr_factor(0.5) (Adam's first step scales with lr)
    ratio = first_step["warmup_cosine"] / first_step["constant"]
    assert ratio == pytest.approx(lr_factor(0.5, "warmup_cosine"), rel=0.05)
    with pytest.raises(ValueError, match="warmup_cosine"):
        lr_factor(0.5, "cosine")
