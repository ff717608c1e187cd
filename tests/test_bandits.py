"""Tests for :mod:`paperlib.engine.bandits`: the contract, the algorithms' behaviour and their bounds.

Behavioural checks run on Bernoulli problems whose rewards are drawn up front (vectorised, one
``(T, K)`` table per seed), so a run is just ``T`` pull/update calls. Every behavioural assertion
is also run against a deliberately broken policy to show that it can fail.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from paperlib.engine.bandit_policy import successive_inclusion
from paperlib.engine.bandits import (
    POLICIES,
    UCB1,
    EpsilonGreedy,
    Exp3,
    Exp3M,
    Exp3S,
    Policy,
    ThompsonSampling,
    Uniform,
    dep_round,
    exp3_gamma,
    exp3_regret_bound,
    make_policy,
    ucb1_regret_bound,
)

ALL = sorted(POLICIES)
RANDOMISED = [name for name in ALL if name != "ucb1"]  # UCB1 is deterministic by design
EXP3_FAMILY = [Exp3, Exp3S, Exp3M]

MEANS = np.array([0.2, 0.3, 0.4, 0.5, 0.8])  # best arm 4
GAPS = MEANS.max() - MEANS
K = len(MEANS)
T = 4000
SEEDS = range(10)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def bernoulli_table(means: np.ndarray, seed: int) -> np.ndarray:
    """``(T, K)`` 0/1 rewards, ``means`` of shape ``(K,)`` or ``(T, K)``."""
    means = np.broadcast_to(means, (T, K))
    return (np.random.default_rng(1000 + seed).random((T, K)) < means).astype(float)


def play(policy: Policy, rewards: np.ndarray) -> np.ndarray:
    """Play ``policy`` against the reward table; the arms it pulled, shape ``(T,)``."""
    arms = np.empty(len(rewards), dtype=np.int64)
    for t, row in enumerate(rewards):
        arm = policy.pull()
        policy.update(arm, row[arm])
        arms[t] = arm
    return arms


def play_seeds(factory, means: np.ndarray) -> np.ndarray:
    """``(n_seeds, T)`` arms of ``factory(seed)`` on independent Bernoulli problems."""
    return np.stack([play(factory(s), bernoulli_table(means, s)) for s in SEEDS])


def late_fraction(arms: np.ndarray, arm: int) -> np.ndarray:
    """Per run, the fraction of the last quarter's pulls that went to ``arm``."""
    return (arms[:, 3 * arms.shape[1] // 4 :] == arm).mean(axis=1)


def assert_concentrates(arms: np.ndarray, best: int, *, mean_at_least: float) -> None:
    fractions = late_fraction(arms, best)
    assert fractions.mean() >= mean_at_least, f"late pulls on best arm: {fractions}"


def assert_regret_below(arms: np.ndarray, bound: float) -> None:
    regret = GAPS[arms].sum(axis=1).mean()  # pseudo-regret sum_t Delta_{a_t}, mean over seeds
    assert regret < bound, f"mean pseudo-regret {regret:.1f} >= bound {bound:.1f}"


class FlippedExp3(Exp3):
    """Broken on purpose: learns from ``1 - r``."""

    def _update(self, arm: int, reward: float) -> None:
        super()._update(arm, 1.0 - reward)


class DeafUCB1(UCB1):
    """Broken on purpose: ignores the reward."""

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, 0.0)


class DeafExp3S(Exp3S):
    """Broken on purpose: ignores the reward (only the sharing step remains)."""

    def _update(self, arm: int, reward: float) -> None:
        super()._update(arm, 0.0)


class SwappedExp3M(Exp3M):
    """Broken on purpose: credits each reward to the *other* arm of the pair."""

    def _update_k(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        super()._update_k(arms, rewards[::-1].copy())


# --------------------------------------------------------------------------------------------
# the contract
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_probabilities_are_distributions_after_random_updates(name: str) -> None:
    policy = make_policy(name, 6, seed=3)
    rng = np.random.default_rng(0)
    n_pulled = n_updates = 0
    for step in range(150):
        if step % 3 == 0:
            arms = policy.pull_k(int(rng.integers(1, 7)))
            policy.update_k(arms, rng.random(len(arms)))
        else:
            arms = [policy.pull()]
            policy.update(arms[0], float(rng.random()))
        n_pulled += len(arms)
        n_updates += len(arms)
        p = policy.probabilities()
        assert p.shape == (6,) and np.all(p >= 0) and np.all(np.isfinite(p))
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert policy.scores().shape == (6,)
    assert int(policy.counts.sum()) == n_pulled and policy.t == n_updates
    assert int(policy.n_obs.sum()) == n_updates


@pytest.mark.parametrize("name", ALL)
def test_pull_k_returns_k_distinct_arms(name: str) -> None:
    policy = make_policy(name, 5, seed=1)
    for k in range(1, 6):
        for _ in range(5):
            arms = policy.pull_k(k)
            assert len(arms) == k and len(set(arms)) == k
            assert all(isinstance(a, int) and 0 <= a < 5 for a in arms)
            policy.update_k(arms, [1.0 if a == 4 else 0.25 for a in arms])
    for bad_k in (0, 6, -1, 1.5, True):
        with pytest.raises(ValueError, match="k"):
            policy.pull_k(bad_k)


def test_exp3m_marginals_sum_to_k_and_are_capped_at_one() -> None:
    policy = Exp3M(6, k=3, gamma=0.05, seed=0)
    rng = np.random.default_rng(1)
    for _ in range(400):
        arms = policy.pull_k(3)
        policy.update_k(arms, [1.0 if a in (0, 1) else 0.1 * rng.random() for a in arms])
    for k in range(1, 7):
        m = policy.marginals(k)
        assert m.sum() == pytest.approx(k, abs=1e-9)
        assert np.all(m <= 1.0) and np.all(m >= k * policy.gamma / 6 - 1e-12)
    # arms 0 and 1 pay: the weights concentrate on them and capping pins them at 1
    assert policy.marginals(3)[:2].tolist() == [1.0, 1.0]
    assert policy.probabilities() == pytest.approx(policy.marginals(3) / 3)


def test_policy_counts_and_statistics() -> None:
    policy = Uniform(3, seed=0)
    arms = [policy.pull() for _ in range(30)]
    assert policy.counts.tolist() == np.bincount(arms, minlength=3).tolist()
    policy.update(1, 1.0)
    policy.update_k([0, 1], [0.5, 0.0])
    assert policy.t == 3 and policy.n_obs.tolist() == [1, 2, 0]
    assert policy.mean_rewards().tolist() == [0.5, 0.5, 0.0]


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_sequence(name: str) -> None:
    def sequence(seed: int) -> list[int]:
        policy = make_policy(name, 5, seed=seed)
        out = []
        for t in range(60):
            arm = policy.pull()
            policy.update(arm, ((arm + t) % 3) / 2)
            out.append(arm)
            out.extend(policy.pull_k(2))
        return out

    assert sequence(7) == sequence(7)
    if name in RANDOMISED:
        assert sequence(7) != sequence(8)


def test_clone_and_repr() -> None:
    policy = make_policy("exp3m", 4, k=2, gamma=0.2, seed=5)
    assert repr(policy) == "Exp3M(n_arms=4, k=2, gamma=0.2, seed=5)"
    fresh = policy.clone(seed=6)
    assert isinstance(fresh, Exp3M) and (fresh.k, fresh.gamma, fresh.seed) == (2, 0.2, 6)


# --------------------------------------------------------------------------------------------
# update formulas
# --------------------------------------------------------------------------------------------


def test_exp3_update_matches_the_formula() -> None:
    gamma, k_arms = 0.3, 4
    policy = Exp3(k_arms, gamma=gamma, seed=0)
    w = np.ones(k_arms)
    for arm, r in [(2, 1.0), (0, 0.4), (2, 0.7), (3, 0.0), (1, 1.0)]:
        p = (1 - gamma) * w / w.sum() + gamma / k_arms
        assert policy.probabilities() == pytest.approx(p, rel=1e-12)
        policy.update(arm, r)
        w[arm] *= math.exp(gamma * (r / p[arm]) / k_arms)
    assert policy.scores() == pytest.approx(np.log(w / w.max()), abs=1e-12)


def test_exp3s_update_matches_the_formula() -> None:
    gamma, alpha, k_arms = 0.2, 0.05, 3
    policy = Exp3S(k_arms, gamma=gamma, alpha=alpha, seed=0)
    w = np.ones(k_arms)
    for arm, r in [(0, 1.0), (0, 1.0), (1, 0.0), (2, 0.5)]:
        p = (1 - gamma) * w / w.sum() + gamma / k_arms
        assert policy.probabilities() == pytest.approx(p, rel=1e-12)
        policy.update(arm, r)
        x_hat = np.zeros(k_arms)
        x_hat[arm] = r / p[arm]
        w = w * np.exp(gamma * x_hat / k_arms) + math.e * alpha / k_arms * w.sum()
    assert policy.scores() == pytest.approx(np.log(w / w.max()), abs=1e-12)


def test_exp3_update_k_weights_by_the_k_sets_exact_inclusion_probabilities() -> None:
    policy = Exp3(4, gamma=0.4, seed=0)
    policy.update(3, 1.0)
    p = policy.probabilities()
    before = policy.scores()
    # the probability that pull_k(2) contains each arm, from its own draws (Monte Carlo)
    draws = copy.deepcopy(policy)
    freq = np.zeros(4)
    for _ in range(20000):
        freq[draws.pull_k(2)] += 1
    q = successive_inclusion(p, 2)
    assert q == pytest.approx(freq / 20000, abs=0.01)
    assert not np.allclose(q, np.minimum(1.0, 2 * p))  # the old approximation differs here
    policy.update_k([3, 0], [1.0, 0.5])
    gains = 0.4 * np.array([1.0, 0.5]) / q[[3, 0]] / 4  # x_hat = r / P(arm in the k-set)
    expected = before.copy()
    expected[[3, 0]] += gains
    assert policy.scores() == pytest.approx(expected - expected.max(), abs=1e-12)


def test_exp3m_with_k1_is_exp3() -> None:
    rewards = bernoulli_table(MEANS, 0)[:500]
    a = play(Exp3(K, gamma=0.1, seed=4), rewards)
    b = play(Exp3M(K, gamma=0.1, seed=4), rewards)
    assert np.array_equal(a, b)


def test_exp3m_update_skips_capped_arms() -> None:
    policy = Exp3M(4, k=2, gamma=0.2, seed=0)
    policy.log_weights = [0.0, -30.0, -30.0, -30.0]  # arm 0 is capped for k = 2
    m = policy.marginals(2)
    assert m[0] == 1.0
    before = policy.scores()
    policy.update_k([0, 1], [1.0, 1.0])
    after = policy.scores()
    gain_1 = 2 * 0.2 * (1.0 / m[1]) / 4
    assert after[1] - after[0] == pytest.approx(before[1] - before[0] + gain_1)


def test_pull_frequencies_match_probabilities() -> None:
    n = 20000
    for policy in (
        Exp3(4, gamma=0.5, seed=0),
        EpsilonGreedy(4, epsilon=0.3, seed=0),
        ThompsonSampling(4, seed=0),
        Exp3M(4, gamma=0.5, seed=0),
    ):
        for arm, r in [(1, 1.0), (1, 1.0), (2, 0.0), (0, 0.6), (1, 1.0), (3, 0.2)]:
            policy.update(arm, r)
        p = policy.probabilities()
        freq = np.bincount([policy.pull() for _ in range(n)], minlength=4) / n
        # 4.5 standard errors of a frequency, plus the Monte Carlo error of Thompson's estimate
        tol = 4.5 * np.sqrt(p * (1 - p) / n) + (0.02 if isinstance(policy, ThompsonSampling) else 0)
        assert np.all(np.abs(freq - p) <= tol + 1e-9), (type(policy).__name__, freq, p)


def test_ucb1_plays_every_arm_once_then_is_greedy_on_the_index() -> None:
    policy = UCB1(4)
    first = []
    for _ in range(4):
        arm = policy.pull()
        first.append(arm)
        policy.update(arm, [0.1, 0.9, 0.5, 0.3][arm])
    assert first == [0, 1, 2, 3]
    index = policy.mean_rewards() + np.sqrt(2 * math.log(4) / 1)
    assert policy.scores() == pytest.approx(index)
    assert policy.probabilities().tolist() == [0.0, 1.0, 0.0, 0.0] and policy.pull() == 1
    assert UCB1(5).pull_k(3) == [0, 1, 2]  # untried arms first


def test_thompson_probabilities_do_not_disturb_the_rng() -> None:
    a, b = ThompsonSampling(3, seed=2), ThompsonSampling(3, seed=2)
    for arm in (0, 1, 1, 2):
        a.update(arm, 0.7)
        b.update(arm, 0.7)
        a.probabilities()
    assert [a.pull() for _ in range(20)] == [b.pull() for _ in range(20)]
    assert np.array_equal(a.probabilities(), b.probabilities())  # reproducible estimate


def test_dep_round_has_the_requested_marginals() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        k = int(rng.integers(1, 6))
        x = rng.random(7)
        # marginals summing to k with each in [0, 1]: Exp3M's own capping produces them
        policy = Exp3M(7, gamma=0.3)
        policy.log_weights = 3 * np.log(x)
        p = policy.marginals(k)
        hits = np.zeros(7)
        n = 4000
        for _ in range(n):
            chosen = dep_round(p, rng)
            assert len(chosen) == k and len(set(chosen.tolist())) == k
            hits[chosen] += 1
        assert np.all(np.abs(hits / n - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9)
    assert dep_round(np.array([1.0, 0.0, 1.0]), rng).tolist() == [0, 2]
    with pytest.raises(ValueError, match="integer"):
        dep_round(np.array([0.5, 0.2]), rng)


# --------------------------------------------------------------------------------------------
# behaviour on stationary and switching Bernoulli problems (with meta-checks)
# --------------------------------------------------------------------------------------------


def test_bounds_helpers() -> None:
    gamma = exp3_gamma(K, T)
    assert gamma == pytest.approx(math.sqrt(K * math.log(K) / ((math.e - 1) * T)))
    assert exp3_regret_bound(K, T) <= 2.63 * math.sqrt(T * K * math.log(K))
    bound = sum(8 * math.log(T) / d for d in GAPS if d > 0) + (1 + math.pi**2 / 3) * GAPS.sum()
    assert ucb1_regret_bound(GAPS, T) == pytest.approx(bound)


def test_exp3_concentrates_and_beats_its_regret_bound() -> None:
    gamma = exp3_gamma(K, T)  # Auer et al. Cor. 3.2 with g = T
    arms = play_seeds(lambda s: Exp3(K, gamma=gamma, seed=s), MEANS)
    assert_concentrates(arms, 4, mean_at_least=0.85)
    assert_regret_below(arms, exp3_regret_bound(K, T))

    broken = play_seeds(lambda s: FlippedExp3(K, gamma=gamma, seed=s), MEANS)
    with pytest.raises(AssertionError):
        assert_concentrates(broken, 4, mean_at_least=0.85)
    with pytest.raises(AssertionError):
        assert_regret_below(broken, exp3_regret_bound(K, T))


def test_ucb1_concentrates_and_beats_its_regret_bound() -> None:
    arms = play_seeds(lambda s: UCB1(K, seed=s), MEANS)
    assert_concentrates(arms, 4, mean_at_least=0.85)
    assert_regret_below(arms, ucb1_regret_bound(GAPS, T))

    broken = play_seeds(lambda s: DeafUCB1(K, seed=s), MEANS)
    with pytest.raises(AssertionError):
        assert_concentrates(broken, 4, mean_at_least=0.85)
    with pytest.raises(AssertionError):
        assert_regret_below(broken, ucb1_regret_bound(GAPS, T))


@pytest.mark.parametrize("cls", [ThompsonSampling, EpsilonGreedy])
def test_stochastic_baselines_concentrate(cls: type[Policy]) -> None:
    arms = play_seeds(lambda s: cls(K, seed=s), MEANS)
    assert_concentrates(arms, 4, mean_at_least=0.85)
    uniform = play_seeds(lambda s: Uniform(K, seed=s), MEANS)
    with pytest.raises(AssertionError):
        assert_concentrates(uniform, 4, mean_at_least=0.85)


def test_exp3s_recovers_after_the_best_arm_switches() -> None:
    before = np.array([0.8, 0.3, 0.4, 0.5, 0.2])  # arm 0 best for the first half
    means = np.where(np.arange(T)[:, None] < T // 2, before, MEANS)  # then arm 4
    gamma = 0.1
    shared = late_fraction(play_seeds(lambda s: Exp3S(K, gamma=gamma, seed=s), means), 4)
    plain = late_fraction(play_seeds(lambda s: Exp3(K, gamma=gamma, seed=s), means), 4)
    deaf = late_fraction(play_seeds(lambda s: DeafExp3S(K, gamma=gamma, seed=s), means), 4)
    assert shared.mean() > 0.5, shared  # most last-quarter pulls on the new best arm
    assert shared.mean() > plain.mean() + 0.3, (shared, plain)
    assert not deaf.mean() > 0.5  # meta-check: without learning the assertion fails


def test_exp3m_two_best_arms_get_the_most_pulls() -> None:
    def top2_hits(cls: type[Exp3M]) -> list[bool]:
        hits = []
        for seed in range(5):
            policy = cls(K, k=2, gamma=0.1, seed=seed)
            rewards = bernoulli_table(MEANS, seed)[:2500]
            for row in rewards:
                arms = policy.pull_k(2)
                policy.update_k(arms, row[arms])
            hits.append(set(np.argsort(-policy.counts)[:2].tolist()) == {3, 4})
        return hits

    assert all(top2_hits(Exp3M))
    assert not all(top2_hits(SwappedExp3M))  # meta-check


# --------------------------------------------------------------------------------------------
# numerical stability
# --------------------------------------------------------------------------------------------

N_STRESS = 200_000  # 2e5 updates per policy: 1e6 pure-Python updates x 3 policies exceeds ~15 s


def _assert_sane(policy: Policy) -> None:
    p = policy.probabilities()
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    lw = policy.log_weights
    assert not np.isnan(lw).any() and lw.max() == 0.0


@pytest.mark.parametrize("cls", EXP3_FAMILY)
def test_exp3_family_is_stable_under_extreme_rewards(cls: type[Policy]) -> None:
    policy = cls(5, gamma=0.1, seed=0)
    quarter = N_STRESS // 4
    patterns = [
        lambda t, arm: 1.0,  # all ones on the pulled arm (self-reinforcing)
        lambda t, arm: 0.0,  # all zeros
        lambda t, arm: float(t & 1),  # alternating
    ]
    for reward in patterns:
        for t in range(quarter):
            arm = policy.pull()
            policy.update(arm, reward(t, arm))
        _assert_sane(policy)
    # largest steps: reward 1 on one arm for 5000 updates, then on the next, which starts from
    # p = gamma/K, so each of its updates moves its log-weight by up to 1
    for t in range(quarter):
        arm = (t // 5000) % 5
        policy.update(arm, 1.0)
    _assert_sane(policy)
    assert policy.t == 4 * quarter


def test_exp3m_k_of_k_is_stable_under_extreme_rewards() -> None:
    policy = Exp3M(5, k=2, gamma=0.1, seed=0)
    for t in range(20_000):
        arms = policy.pull_k(2)
        policy.update_k(arms, [1.0 if (a + t // 5000) % 5 < 2 else 0.0 for a in arms])
        if t % 5000 == 4999:
            m = policy.marginals(2)
            assert np.all(np.isfinite(m)) and m.sum() == pytest.approx(2.0) and m.max() <= 1.0
    _assert_sane(policy)


@pytest.mark.parametrize("cls", EXP3_FAMILY)
def test_extreme_log_weights_stay_finite(cls: type[Policy]) -> None:
    policy = cls(4, gamma=0.05, seed=0)
    policy.log_weights = [1e6, 0.0, -1e300, -np.inf]  # shifted so that the max is 0
    _assert_sane(policy)
    for arm in (3, 2, 1, 0):
        policy.update(arm, 1.0)
        _assert_sane(policy)
    with pytest.raises(ValueError):
        policy.log_weights = [np.nan, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        policy.log_weights = [0.0, 0.0]


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("reward", [1.5, -0.1, float("nan"), float("inf"), "high", None])
def test_invalid_reward_raises(name: str, reward: object) -> None:
    policy = make_policy(name, 3, seed=0)
    with pytest.raises(ValueError, match="reward"):
        policy.update(0, reward)
    with pytest.raises(ValueError, match="reward"):
        policy.update_k([0, 1], [0.5, reward])
    assert policy.t == 0  # nothing was recorded


@pytest.mark.parametrize("name", ALL)
def test_invalid_arms_raise(name: str) -> None:
    policy = make_policy(name, 3, seed=0)
    for arm in (-1, 3, 1.0, True, "0"):
        with pytest.raises(ValueError, match="arm"):
            policy.update(arm, 0.5)
    with pytest.raises(ValueError, match="distinct"):
        policy.update_k([1, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="rewards"):
        policy.update_k([0, 1], [0.5])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("exp3", {"n_arms": 0}),
        ("exp3", {"n_arms": True}),
        ("exp3", {"n_arms": 2.5}),
        ("exp3", {"seed": -1}),
        ("exp3", {"gamma": 0.0}),
        ("exp3", {"gamma": 1.5}),
        ("exp3s", {"alpha": -0.1}),
        ("exp3s", {"alpha": float("nan")}),
        ("exp3m", {"k": 4}),
        ("exp3m", {"k": 0}),
        ("epsilon_greedy", {"epsilon": 1.1}),
        ("thompson", {"prior_alpha": 0.0}),
        ("thompson", {"n_mc": 0}),
    ],
)
def test_invalid_hyperparameters_raise(name: str, kwargs: dict) -> None:
    kwargs = {"n_arms": 3, **kwargs}
    with pytest.raises(ValueError):
        make_policy(name, **kwargs)


def test_unknown_policy_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown policy 'exp4'") as info:
        make_policy("exp4", 3)
    for name in POLICIES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="no hyper-parameter 'gamma'"):
        make_policy("ucb1", 3, gamma=0.1)


def test_registry_and_make_policy() -> None:
    assert POLICIES == {
        "exp3": Exp3,
        "exp3s": Exp3S,
        "exp3m": Exp3M,
        "ucb1": UCB1,
        "thompson": ThompsonSampling,
        "epsilon_greedy": EpsilonGreedy,
        "uniform": Uniform,
    }
    policy = make_policy("EXP3", 4, seed=9, gamma=0.2)
    assert isinstance(policy, Exp3) and policy.gamma == 0.2 and policy.seed == 9
    assert issubclass(Exp3S, Exp3) and all(issubclass(c, Policy) for c in POLICIES.values())
