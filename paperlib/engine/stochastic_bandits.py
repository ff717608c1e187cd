"""Stochastic and baseline bandit policies: :class:`UCB1`, :class:`ThompsonSampling`,
:class:`EpsilonGreedy` and :class:`Uniform` (the "random" baseline). See :mod:`paperlib.engine.bandits`
for the contract and references."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from paperlib.engine.bandit_policy import (
    Policy,
    _check_int,
    _check_real,
)

# --------------------------------------------------------------------------------------------
# stochastic policies and baselines
# --------------------------------------------------------------------------------------------


def ucb1_regret_bound(gaps: Sequence[float], horizon: int) -> float:
    r"""UCB1's expected-regret bound after ``n = horizon`` plays (Auer et al. 2002, Thm. 1).

    .. math::

        \sum_{i:\Delta_i > 0} \frac{8\ln n}{\Delta_i} + \Big(1 + \frac{\pi^2}{3}\Big)
        \sum_i \Delta_i, \qquad \Delta_i = \mu^* - \mu_i.

    >>> round(ucb1_regret_bound([0.6, 0.5, 0.4, 0.3, 0.0], 5000), 1)
    655.0
    """
    horizon = _check_int(horizon, "horizon", 1)
    d = np.asarray(gaps, dtype=np.float64)
    if np.any(d < 0) or not np.all(np.isfinite(d)):
        raise ValueError("gaps must be finite and non-negative")
    pos = d[d > 0]
    return float(np.sum(8.0 * math.log(horizon) / pos) + (1.0 + math.pi**2 / 3.0) * d.sum())


class UCB1(Policy):
    r"""UCB1 (Auer, Cesa-Bianchi & Fischer 2002): optimism in the face of uncertainty.

    Play every arm once, then the arm maximising the index

    .. math:: \bar x_i + \sqrt{2 \ln t / n_i},

    with :math:`\bar x_i` the mean reward and :math:`n_i` the number of rewards of arm ``i`` and
    :math:`t` the total number of rewards. Deterministic: ties (and untried arms) go to the
    lowest index, so :meth:`probabilities` is one-hot on the arm :meth:`pull` returns, and
    ``pull_k`` returns the ``k`` largest indices (untried arms first). :meth:`scores` are the
    indices (``inf`` for untried arms).

    >>> policy = UCB1(3)
    >>> [policy.pull() for _ in range(2)], policy.probabilities().tolist()
    ([0, 0], [1.0, 0.0, 0.0])
    >>> policy.update(0, 1.0); policy.pull_k(2)
    [1, 2]
    """

    def probabilities(self) -> np.ndarray:
        p = np.zeros(self.n_arms)
        p[self._pull()] = 1.0
        return p

    def scores(self) -> np.ndarray:
        n = self.n_obs
        idx = np.full(self.n_arms, np.inf)
        tried = n > 0
        bonus = np.sqrt(2.0 * math.log(max(self.t, 1)) / n[tried])
        idx[tried] = self.reward_sum[tried] / n[tried] + bonus
        return idx

    def _pull(self) -> int:
        return int(np.argmax(self.scores()))

    def _pull_k(self, k: int) -> Sequence[int]:
        return np.argsort(-self.scores(), kind="stable")[:k].tolist()

    def _update(self, arm: int, reward: float) -> None:
        pass  # the shared statistics (n_obs, reward_sum, t) are all UCB1 needs


class ThompsonSampling(Policy):
    r"""Beta-Bernoulli Thompson sampling, with the Bernoulli trick for ``[0, 1]`` rewards.

    Posterior :math:`\mathrm{Beta}(a_i, b_i)` per arm from the prior ``Beta(prior_alpha,
    prior_beta)``. A reward :math:`r \in [0, 1]` is replaced by :math:`\tilde r \sim
    \mathrm{Bernoulli}(r)` (Agrawal & Goyal 2012), then :math:`a_i \mathrel{+}= \tilde r`,
    :math:`b_i \mathrel{+}= 1 - \tilde r`. ``pull`` samples :math:`\theta_i \sim \mathrm{Beta}
    (a_i, b_i)` and returns the argmax; ``pull_k`` the ``k`` largest :math:`\theta_i`.

    :meth:`probabilities` is a Monte Carlo estimate of :math:`P(\arg\max_j\theta_j = i)` from
    ``n_mc`` joint posterior draws, taken from a separate generator seeded by ``(seed, t)``: it
    is reproducible, does not advance :attr:`rng`, and its standard error is at most
    :math:`0.5/\sqrt{n_{mc}}`. :meth:`scores` are the posterior means :math:`a_i/(a_i+b_i)`.

    >>> policy = ThompsonSampling(2, seed=0)
    >>> for _ in range(50):
    ...     policy.update(1, 1.0)
    >>> policy.posterior_a.tolist(), policy.posterior_b.tolist()
    ([1.0, 51.0], [1.0, 1.0])
    >>> state = policy.rng.bit_generator.state
    >>> p = policy.probabilities(); bool(p[1] > 0.9)
    True
    >>> policy.rng.bit_generator.state == state and bool(np.all(p == policy.probabilities()))
    True
    """

    def __init__(
        self,
        n_arms: int,
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_mc: int = 1000,
        seed: int | None = 0,
    ) -> None:
        super().__init__(n_arms, seed=seed)
        self.prior_alpha = _check_real(prior_alpha, "prior_alpha", 0.0, math.inf, low_open=True)
        self.prior_beta = _check_real(prior_beta, "prior_beta", 0.0, math.inf, low_open=True)
        self.n_mc = _check_int(n_mc, "n_mc", 1)
        self.posterior_a = np.full(self.n_arms, self.prior_alpha)
        self.posterior_b = np.full(self.n_arms, self.prior_beta)
        self._entropy = np.random.SeedSequence(seed).entropy

    def probabilities(self) -> np.ndarray:
        mc = np.random.default_rng([self._entropy, self.t])
        theta = mc.beta(self.posterior_a, self.posterior_b, size=(self.n_mc, self.n_arms))
        return np.bincount(theta.argmax(axis=1), minlength=self.n_arms) / self.n_mc

    def scores(self) -> np.ndarray:
        """Posterior means."""
        return self.posterior_a / (self.posterior_a + self.posterior_b)

    def _pull(self) -> int:
        return int(np.argmax(self.rng.beta(self.posterior_a, self.posterior_b)))

    def _pull_k(self, k: int) -> Sequence[int]:
        theta = self.rng.beta(self.posterior_a, self.posterior_b)
        return np.argsort(-theta, kind="stable")[:k].tolist()

    def _update(self, arm: int, reward: float) -> None:
        success = float(self.rng.random() < reward)
        self.posterior_a[arm] += success
        self.posterior_b[arm] += 1.0 - success


class EpsilonGreedy(Policy):
    r"""Epsilon-greedy on the running mean rewards :math:`\bar x_i` (0 before any reward).

    ``pull``: with probability :math:`\varepsilon` a uniformly random arm, otherwise a greedy
    arm, ties broken uniformly at random, so exactly

    .. math:: p_i = \frac{\varepsilon}{K} + (1-\varepsilon)\frac{[i \in G]}{|G|},
              \qquad G = \arg\max_j \bar x_j.

    ``pull_k``: ``k`` slots filled in turn, each with a uniformly random remaining arm with
    probability :math:`\varepsilon` and otherwise the best remaining arm of the greedy ranking
    (means descending, random tie-break).

    Args:
        epsilon: exploration probability in ``[0, 1]``.

    >>> policy = EpsilonGreedy(4, epsilon=0.2)
    >>> policy.update(2, 1.0)
    >>> policy.probabilities().tolist()
    [0.05, 0.05, 0.8500000000000001, 0.05]
    """

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, seed: int | None = 0) -> None:
        super().__init__(n_arms, seed=seed)
        self.epsilon = _check_real(epsilon, "epsilon", 0.0, 1.0)

    def _greedy(self) -> np.ndarray:
        means = self.mean_rewards()
        return np.flatnonzero(means == means.max())

    def probabilities(self) -> np.ndarray:
        p = np.full(self.n_arms, self.epsilon / self.n_arms)
        greedy = self._greedy()
        p[greedy] += (1.0 - self.epsilon) / len(greedy)
        return p

    def _pull(self) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_arms))
        greedy = self._greedy()
        return int(greedy[self.rng.integers(len(greedy))])

    def _pull_k(self, k: int) -> Sequence[int]:
        ranking = np.lexsort((self.rng.random(self.n_arms), -self.mean_rewards())).tolist()
        free = np.ones(self.n_arms, dtype=bool)
        chosen: list[int] = []
        for _ in range(k):
            if self.rng.random() < self.epsilon:
                candidates = np.flatnonzero(free)
                arm = int(candidates[self.rng.integers(len(candidates))])
            else:
                arm = next(a for a in ranking if free[a])
            free[arm] = False
            chosen.append(arm)
        return chosen

    def _update(self, arm: int, reward: float) -> None:
        pass  # running means come from the shared n_obs / reward_sum


class Uniform(Policy):
    """Uniformly random arms: the "random" baseline. ``pull_k`` draws ``k`` distinct arms.

    >>> Uniform(4).probabilities().tolist()
    [0.25, 0.25, 0.25, 0.25]
    """

    def probabilities(self) -> np.ndarray:
        return np.full(self.n_arms, 1.0 / self.n_arms)

    def _pull(self) -> int:
        return int(self.rng.integers(self.n_arms))

    def _pull_k(self, k: int) -> Sequence[int]:
        return self.rng.choice(self.n_arms, size=k, replace=False).tolist()

    def _update(self, arm: int, reward: float) -> None:
        pass
