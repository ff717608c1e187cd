"""Sample sources and weight scopes: the store, replay, the sample bandit's arms and budget,
and the weight bandit's path-integral reward."""

import pytest
import torch

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import mlp
from paperlib.engine.plugins import Plugin, RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.rewards import QuantileScaler
from paperlib.engine.samples import Replay, SampleBandit, SeenData
from paperlib.engine.weights import RandomWeights, WeightBandit


def _chunk(n, classes, seed, name="c"):
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=g)]
    return Chunk(torch.rand(n, 1, 8, 8, generator=g), y, name)


def _ctx(model, new, seen, r=1):
    return RoundContext(r, model, model, new, None, seen, torch.device("cpu"),
                        torch.Generator().manual_seed(r), ComputeMeter(model, (1, 8, 8)))


def test_reservoir_keeps_every_sample_with_equal_probability():
    hits = torch.zeros(1000)
    for seed in range(200):
        store = SeenData(100, generator=torch.Generator().manual_seed(seed))
        for k in range(10):
            idx = torch.arange(k * 100, (k + 1) * 100)
            store.add(Chunk(idx.float()[:, None], idx, "c"), k)
        assert len(store) == 100 and store.n_seen == 1000
        assert len(set(store.y.tolist())) == 100, "no sample stored twice"
        hits[store.y] += 1
    rate = hits / 200
    assert abs(rate[:500].mean() - 0.1) < 0.01 and abs(rate[500:].mean() - 0.1) < 0.01
    # the later rounds' arrival labels are kept alongside the samples
    assert (store.arrival == store.y // 100).all()


@pytest.mark.parametrize("capacity", [None, 250])
def test_store_rows_match_a_plain_concatenation(capacity):
    """The store grows its buffers geometrically instead of re-concatenating every round: the
    rows, labels and arrival rounds it holds are those of the plain concatenation (unbounded)
    or of the reservoir filled the same way (bounded), and each ``add`` copies only its chunk
    while the buffers have room."""
    store = SeenData(capacity, generator=torch.Generator().manual_seed(0))
    chunks = [_chunk(60, [0, 1, 2], k, f"c{k}") for k in range(6)]
    buffers = []
    for k, c in enumerate(chunks):
        store.add(c, k)
        buffers.append(store._buffers[0].data_ptr())
    n = sum(len(c) for c in chunks)
    assert store.n_seen == n
    if capacity is None:
        assert len(store) == n and store.x.shape == (n, 1, 8, 8)
        assert torch.equal(store.x, torch.cat([c.x for c in chunks]))
        assert torch.equal(store.y, torch.cat([c.y for c in chunks]))
        assert store.arrival.tolist() == sum(([k] * len(c) for k, c in enumerate(chunks)), [])
        assert len(set(buffers)) <= 4, "buffers doubled: 60, 120, 240, 480 rows"
    else:  # reservoir: every stored row is one of the chunks' rows, with its own label/round
        assert len(store) == capacity and buffers[-1] == buffers[-2], "full: in place"
        every = torch.cat([c.x for c in chunks]).flatten(1)
        rounds = torch.cat([torch.full((len(c),), k) for k, c in enumerate(chunks)])
        labels = torch.cat([c.y for c in chunks])
        match = (store.x.flatten(1)[:, None, :] == every[None]).all(-1)
        assert (match.sum(1) == 1).all()
        src = match.float().argmax(1)
        assert torch.equal(labels[src], store.y) and torch.equal(rounds[src], store.arrival)


def test_replay_mixes_memory_into_every_batch_and_matches_the_bandit_budget():
    model = mlp((1, 8, 8), 10, widths=(8,))
    seen = SeenData()
    seen.add(_chunk(300, [0, 1, 2, 3, 4], 0), 0)
    new = _chunk(200, [5, 6, 7, 8, 9], 1)
    replay = Replay(epochs=1, memory_size=50, replay_ratio=0.5, budget_factor=2)
    steps = replay.start_round(_ctx(model, new, seen), batch_size=20)
    x, y, _ = replay.next_batch()
    assert (y[:10] >= 5).all() and (y[10:] < 5).all(), "first half new, second half memory"
    bandit = SampleBandit(epochs=1, budget_factor=2)
    assert bandit.start_round(_ctx(model, new, seen), batch_size=20) == steps == 20


def test_sample_bandit_arms_by_grouping():
    model = mlp((1, 8, 8), 10, widths=(8,))
    seen = SeenData()
    seen.add(_chunk(60, [0, 1], 0), 0)
    seen.add(_chunk(60, [2, 3], 1), 1)
    new = _chunk(30, [4], 2)
    expect = {"chunk": ["round 0", "round 1"],
              "class": ["class 0", "class 1", "class 2", "class 3"],
              "loss": ["loss q1/4", "loss q2/4", "loss q3/4", "loss q4/4"]}
    # new_share=0: the whole batch from the picked arm, the new chunk being arm 0 ("new");
    # new_share=0.5 (default): 4 of 8 rows from the new chunk, the other 4 from the picked arm
    for share, n_new, first in ((0.0, 0, ["new"]), (0.5, 4, [])):
        for grouping, memory_arms in expect.items():
            names = first + memory_arms
            source = SampleBandit(grouping=grouping, new_share=share)
            source.start_round(_ctx(model, new, seen, r=2), batch_size=8)
            assert source.arm_names == names
            for _ in range(20):
                x, y, arm = source.next_batch()
                assert (y[:n_new] == 4).all()
                if grouping == "class" and names[arm] != "new":
                    assert (y[n_new:] == int(names[arm].split()[1])).all()
                if grouping == "chunk":
                    assert ((y[n_new:] == 4) == (names[arm] == "new")).all()


def test_quantile_scaler_maps_into_unit_interval():
    s = QuantileScaler()
    vals = [s(v) for v in torch.randn(300).tolist()]
    assert min(vals) >= 0 and max(vals) <= 1 and 0.2 < sum(vals) / len(vals) < 0.8


class ExactPath(Plugin):
    """Reference: -sum g * delta_theta per group, from parameter copies."""

    def __init__(self, scope):
        self.scope, self.total = scope, {}

    def before_update(self, step):
        self.before = {g: [p.detach().clone() for p in self.scope.params[g]]
                       for g in self.scope.active}

    def after_step(self, step):
        for g, b in self.before.items():
            c = sum(-(p.grad * (p.detach() - p0)).sum() for p, p0 in
                    zip(self.scope.params[g], b, strict=True) if p.grad is not None)
            self.total[g] = self.total.get(g, 0.0) + float(c)


def test_weight_bandit_reward_is_the_path_integral_and_k_groups_train():
    torch.manual_seed(0)
    model = mlp((1, 8, 8), 10, widths=(16, 8))
    new = _chunk(256, list(range(10)), 3)
    scope = WeightBandit(k_groups=2, reselect_every=1000, seed=0)
    spy = ExactPath(scope)
    ctx = _ctx(model, new, SeenData(), r=1)
    settings = TrainSettings(batch_size=32, lr=1e-2)
    from paperlib.engine.samples import NewOnly

    # run the round's steps but stop before the period closes, to read the accumulators
    scope_close = scope._close_period
    scope._close_period = lambda: None
    Retrainer(settings).run_round(ctx, NewOnly(1), scope, [spy], steps=15)
    scope._close_period = scope_close
    assert len(spy.total) == 2
    for g, exact in spy.total.items():
        assert abs(float(scope.contrib[g]) - exact) <= 1e-4 * max(1.0, abs(exact))
    trained = [row["group"] for row in scope.log if row["trained"]]
    assert len(trained) == 2


def test_random_weights_choose_k_groups_per_period():
    torch.manual_seed(0)
    model = mlp((1, 8, 8), 10, widths=(16, 8))
    scope = RandomWeights(k_groups=1, reselect_every=5, seed=3)
    ctx = _ctx(model, _chunk(128, list(range(10)), 4), SeenData())
    from paperlib.engine.samples import NewOnly

    Retrainer(TrainSettings(batch_size=16)).run_round(ctx, NewOnly(1), scope, [], steps=20)
    per_period = {}
    for row in scope.log:
        per_period.setdefault(row["step"], []).append(row["trained"])
    assert sorted(per_period) == [0, 5, 10, 15]
    assert all(sum(v) == 1 for v in per_period.values())


def test_holdout_reward_batch_is_held_out_of_every_arm():
    model = mlp((1, 8, 8), 10, widths=(8,))
    seen = SeenData()
    idx = torch.arange(60)
    seen.add(Chunk(idx.float().repeat_interleave(64).view(60, 1, 8, 8), idx % 10, "a"), 0)
    new_ids = torch.arange(60, 100)
    new = Chunk(new_ids.float().repeat_interleave(64).view(40, 1, 8, 8), new_ids % 10, "b")
    source = SampleBandit(reward="holdout", holdout_size=30)
    source.start_round(_ctx(model, new, seen), batch_size=8)
    held = set(source.holdout[0][:, 0, 0, 0].long().tolist())
    assert len(held) == 30
    drawn = set()
    for _ in range(200):
        x, _, _ = source.next_batch()
        drawn |= set(x[:, 0, 0, 0].long().tolist())
    assert not held & drawn and len(drawn) == 100 - 30


def test_weight_bandit_per_parameter_reward():
    torch.manual_seed(0)
    model = mlp((1, 8, 8), 10, widths=(16, 8))
    seen_rewards = []
    scope = WeightBandit(k_groups=1, reselect_every=4, seed=0, reward="per_param",
                         train_head_always=False)
    original = scope._close_period

    def spy():
        if scope.active:
            g = scope.active[0]
            raw = float(scope.contrib[g]) / scope.n_params[g]
            seen_rewards.append(scope.scaler(raw))
            scope.scaler.history.pop()  # leave the scaler as the real update will see it
        original()

    scope._close_period = spy
    from paperlib.engine.samples import NewOnly

    ctx = _ctx(model, _chunk(128, list(range(10)), 5), SeenData())
    Retrainer(TrainSettings(batch_size=16, lr=1e-2)).run_round(ctx, NewOnly(1), scope, [], steps=24)
    assert len(seen_rewards) == 6 and all(0.0 <= r <= 1.0 for r in seen_rewards)
    assert len(set(seen_rewards)) > 1, "per-parameter rewards are graded, not all-or-nothing"
    with pytest.raises(ValueError, match="share"):
        WeightBandit(reward="loss")
