"""Issue 8's equal-compute sample bandit and neuron term: mixed batches (a fixed share of new
data, the rest from one memory arm), the arm's reward from the step's own logits, the anchored
lazy cache of the served model's outputs, and the shared fisher + neuron importance pass."""

import copy

import pytest
import torch
import torch.nn.functional as F

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import lenet, mlp
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import SampleBandit, SeenData
from paperlib.engine.weights import AllWeights
from paperlib.method.importance import (
    _neuron_term,
    fisher_and_neuron_importance,
    neuron_importance,
    squared_batch_gradients,
)
from paperlib.method.regularizers import SynapseNeuronImportance

SHAPE = (1, 8, 8)
N_NEW = 40  # rows 0..39 of every pool below are the new chunk


def _chunk(n, classes, seed, name="c"):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=g)]
    return Chunk(torch.rand(n, *SHAPE, generator=g), y, name)


def _seen_two_rounds():
    seen = SeenData()
    seen.add(_chunk(60, [0, 1, 2], 0), 0)
    seen.add(_chunk(60, [3, 4, 5], 1), 1)
    return seen


def _ctx(model, seen, served=None, r=2):
    return RoundContext(r, model, served, _chunk(N_NEW, [6, 7], r), None, seen,
                        torch.device("cpu"), torch.Generator().manual_seed(r),
                        ComputeMeter(model, SHAPE))


def _pool_round(seen):
    """Each pool row's arrival round (-1: the new chunk), for a source whose memory is ``seen``."""
    return torch.cat([torch.full((N_NEW,), -1), seen.arrival])


class ForwardCounter:
    """Counts calls of a module's ``forward`` and the samples they saw."""

    def __init__(self, module):
        self.calls = self.samples = 0
        self.sizes = []
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.calls += 1
        self.samples += len(args[0])
        self.sizes.append(len(args[0]))


# -- mixed batches ----------------------------------------------------------------------------


def test_mixed_batches_take_the_new_share_first_and_the_rest_from_the_picked_arm():
    model, seen = mlp(SHAPE, 10, widths=(8,)), _seen_two_rounds()
    source = SampleBandit(memory_size=None, new_share=0.25)  # memory = seen: rounds 0 and 1
    source.start_round(_ctx(model, seen), batch_size=16)
    assert source.arm_names == ["round 0", "round 1"] and source.n_new == 4
    arrival, new_parts, picked = _pool_round(seen), [], set()
    for _ in range(N_NEW // 4):
        x, y, arm = source.next_batch()
        idx = source.last_index
        assert len(idx) == 16 and torch.equal(x, source.pool[0][idx])
        assert (idx[:4] < N_NEW).all() and (idx[4:] >= N_NEW).all()
        assert (arrival[idx[4:]] == int(source.arm_names[arm].split()[1])).all()
        new_parts.append(idx[:4])
        picked.add(arm)
    assert picked == {0, 1}, "both memory arms were drawn (so the check above saw each)"
    # the new part cycles through the chunk: every new sample once per epoch
    assert sorted(torch.cat(new_parts).tolist()) == list(range(N_NEW))

    old = SampleBandit(memory_size=None, new_share=0)
    old.start_round(_ctx(model, seen), batch_size=16)
    assert old.arm_names == ["new", "round 0", "round 1"] and old.n_new == 0
    for _ in range(10):
        _, _, arm = old.next_batch()
        rounds = set(arrival[old.last_index].tolist())
        assert rounds == ({-1} if arm == 0 else {arm - 1}), "the whole batch from one arm"


def test_mixed_batches_keep_a_row_for_each_part_and_fall_back_without_memory():
    model, seen = mlp(SHAPE, 10, widths=(8,)), _seen_two_rounds()
    for share, expect in ((0.99, 7), (0.01, 1), (0.5, 4)):
        source = SampleBandit(memory_size=None, new_share=share)
        source.start_round(_ctx(model, seen), batch_size=8)
        assert source.n_new == expect
    alone = SampleBandit(memory_size=None)  # nothing seen yet: the new chunk is the only arm
    alone.start_round(_ctx(model, SeenData()), batch_size=8)
    assert alone.arm_names == ["new"] and alone.n_new == 0
    with pytest.raises(ValueError, match="new_share"):
        SampleBandit(new_share=1.0)


# -- the arm's reward -------------------------------------------------------------------------


class _Recorder(Plugin):
    """Keeps each step's batch and the model's weights before its update (no forward)."""

    def __init__(self):
        self.steps = []

    def penalty(self, step):
        state = copy.deepcopy(step.round.model.state_dict())
        self.steps.append((step.x.clone(), step.y.clone(), step.loss.detach().clone(), state))


def test_mixed_reward_is_the_memory_rows_cross_entropy_with_no_extra_forward():
    torch.manual_seed(0)
    model, seen = mlp(SHAPE, 10, widths=(16,)), _seen_two_rounds()
    ctx = _ctx(model, seen)
    counter = ForwardCounter(model)  # after the meter's own measuring pass

    class Recording(SampleBandit):
        def update(self, arm, loss):
            self.rewarded.append(loss)
            super().update(arm, loss)

    source = Recording(memory_size=None, new_share=0.5)
    source.rewarded, spy = [], _Recorder()
    steps, batch = 6, 16
    cost = Retrainer(TrainSettings(batch_size=batch, lr=1e-2)).run_round(
        ctx, source, AllWeights(), [spy], steps=steps)
    assert counter.calls == steps and counter.samples == steps * batch, "one forward per step"
    assert cost.train_flops == pytest.approx(
        steps * ctx.meter.step_flops(batch, ctx.meter.group_names)), "nothing else charged"
    by_hand = copy.deepcopy(model)
    for (x, y, loss, state), reward in zip(spy.steps, source.rewarded, strict=True):
        by_hand.load_state_dict(state)
        with torch.no_grad():
            memory = F.cross_entropy(by_hand(x[8:]), y[8:])
        assert reward == pytest.approx(float(memory), rel=1e-5, abs=1e-6)
        assert abs(reward - float(loss)) > 1e-4, "not the whole batch's loss"


# -- the anchored lazy cache of the served model's outputs ------------------------------------


def _neuron_round(served, model, steps, batch=16, **reg_kw):
    """``steps`` penalty evaluations of an SNI neuron term (no synapse term, no update) on
    mixed bandit batches: (penalties, the served model's forwards (a :class:`ForwardCounter`),
    flops charged, each batch's pool rows, the pool's inputs, the regulariser)."""
    ctx = _ctx(model, _seen_two_rounds(), served=served)
    source = SampleBandit(memory_size=None)
    source.start_round(ctx, batch)
    ctx.batch_pool = source.pool
    reg = SynapseNeuronImportance(lam_synapse=0.0, importance_samples=32, **reg_kw)
    reg.before_round(ctx)
    counter, before = ForwardCounter(served), ctx.meter.flops
    values, rows = [], []
    for step in range(steps):
        x, y, arm = source.next_batch()
        logits, hidden = model(x, return_hidden=True)
        sc = StepContext(ctx, step, x, y, logits, F.cross_entropy(logits, y), hidden, arm,
                         source.last_index)
        values.append(float(reg.penalty(sc).detach()))
        rows.append(source.last_index)
    counter.handle.remove()
    return values, counter, ctx.meter.flops - before, rows, source.pool[0], reg


def _served_and_moved(make):
    torch.manual_seed(0)
    served, model = make(), make()
    model.load_state_dict(served.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return served, model


def _mlp():
    return mlp(SHAPE, 10, widths=(16, 8))


def test_anchored_cache_forwards_every_anchor_once_and_nothing_else():
    served, model = _served_and_moved(_mlp)
    reference = copy.deepcopy(served)  # uncounted
    anchors = 24
    values, forwarded, flops, rows, pool_x, reg = _neuron_round(served, model, 12,
                                                                neuron_anchors=anchors)
    mask = reg._anchor
    assert int(mask.sum()) == anchors and len(mask) == len(pool_x) == N_NEW + 120
    fwd = ComputeMeter(model, SHAPE).forward_flops_per_sample
    # all anchors in one served forward (at the first step whose batch holds one), charged
    assert forwarded.calls == 1 and forwarded.samples == anchors and flops == anchors * fwd
    # each penalty is the neuron term over the batch's anchor rows only (none: no term)
    with_term = 0
    for value, idx in zip(values, rows, strict=True):
        x = pool_x[idx[mask[idx]]]
        if len(x) == 0:
            assert value == 0.0
            continue
        with torch.no_grad():
            h_old = reference(x, return_hidden=True)[1]
            h_new = model(x, return_hidden=True)[1]
        expected = reg.lam * reg.lam_neuron * float(_neuron_term(h_new, h_old, reg.omega_n))
        assert value == pytest.approx(expected, rel=1e-5) and value > 0
        with_term += 1
    assert with_term > 1


def test_cache_without_anchors_equals_the_per_step_served_forward():
    served, model = _served_and_moved(_mlp)
    steps, batch = 10, 16
    cached, forwarded, flops, rows, _, _ = _neuron_round(served, model, steps, batch,
                                                         neuron_anchors=None)
    per_step, forwarded_old, _, rows_old, _, _ = _neuron_round(served, model, steps, batch,
                                                               neuron_cache=False)
    assert all(torch.equal(a, b) for a, b in zip(rows, rows_old, strict=True)), "same batches"
    torch.testing.assert_close(torch.tensor(cached), torch.tensor(per_step), rtol=1e-6,
                               atol=1e-6)
    distinct = len({int(i) for idx in rows for i in idx})
    fwd = ComputeMeter(model, SHAPE).forward_flops_per_sample
    assert forwarded.samples == distinct < forwarded_old.samples == steps * batch
    assert flops == distinct * fwd


def test_anchored_cache_on_batch_norm_fills_the_anchors_in_full_batches():
    """Batch norm in train mode cannot normalise a lone missing row (an error) or a few: the
    first step computes every anchor row in batches of the training batch's size."""

    def small_lenet():
        return lenet(SHAPE, 10, channels=(4, 8), fc_width=16)

    served, model = _served_and_moved(small_lenet)
    fwd = ComputeMeter(model, SHAPE).forward_flops_per_sample
    for anchors in (17, None):
        values, forwarded, flops, _, pool_x, _ = _neuron_round(served, model, 6, 8,
                                                               neuron_anchors=anchors)
        n = anchors or len(pool_x)
        assert forwarded.samples == n and flops == n * fwd
        assert min(forwarded.sizes) > 1 and max(forwarded.sizes) <= 8
        assert all(v >= 0 for v in values) and any(v > 0 for v in values)


# -- one pass for both importances ------------------------------------------------------------


@pytest.mark.parametrize("classes", [None, [0, 1, 2, 3, 4, 5]])
def test_shared_pass_equals_the_two_separate_estimators(classes):
    torch.manual_seed(0)
    model = mlp(SHAPE, 10, widths=(16, 8))
    seen = _seen_two_rounds()
    x, y = seen.x[:100], seen.y[:100]
    omega_s, omega_n = fisher_and_neuron_importance(model, x, y, classes, batch_size=32)
    ref_s = squared_batch_gradients(model, x, y, classes, batch_size=32)  # 4 batches, last 4
    ref_n = neuron_importance(model, x, y, classes, batch_size=64)
    assert omega_s.keys() == ref_s.keys() and len(omega_n) == len(ref_n) == 3
    for n, t in ref_s.items():
        torch.testing.assert_close(omega_s[n], t, rtol=1e-5, atol=1e-10)
    for a, b in zip(omega_n, ref_n, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)


def test_sni_shared_pass_charges_one_forward_backward_over_the_importance_samples():
    torch.manual_seed(0)
    served = mlp(SHAPE, 10, widths=(16, 8))
    meter = ComputeMeter(served, SHAPE)
    fwd, bwd = meter.forward_flops_per_sample, meter.backward_flops_per_sample
    act = meter.activation_backward_flops_per_sample
    omegas, charged = {}, {}
    for shared in (True, False):
        ctx = _ctx(copy.deepcopy(served), _seen_two_rounds(), served=served)
        reg = SynapseNeuronImportance(importance="fisher", importance_samples=48,
                                      shared_pass=shared)
        before = ctx.meter.flops
        reg.before_round(ctx)
        charged[shared] = ctx.meter.flops - before
        omegas[shared] = reg.omega_s, reg.omega_n
    assert charged[True] == 48 * (fwd + bwd), "one forward + backward to the weights per sample"
    # separately: that pass for the synapses, and one to the block outputs for the neurons
    assert charged[False] == 48 * (fwd + bwd + fwd + act) < 2 * charged[True]
    for n, t in omegas[False][0].items():
        torch.testing.assert_close(omegas[True][0][n], t, rtol=1e-5, atol=1e-10)
    for a, b in zip(omegas[True][1], omegas[False][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)
