"""The bandit contract (:class:`Policy`: ``pull`` / ``update``, rewards in ``[0, 1]``) and the
validation and sampling helpers every policy shares. The policies themselves live in
:mod:`paperlib.engine.exp3` (adversarial) and :mod:`paperlib.engine.stochastic_bandits`; the registry and the
overview in :mod:`paperlib.engine.bandits`."""

from __future__ import annotations

import abc
import inspect
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        ivalue = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if ivalue < low or (high is not None and ivalue > high):
        bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be in {bounds}, got {ivalue}")
    return ivalue


def _check_real(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    try:
        fvalue = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    ok = (low < fvalue if low_open else low <= fvalue) and fvalue <= high  # NaN fails both
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return fvalue


def _check_reward(reward: Any) -> float:
    try:
        r = float(reward)
    except (TypeError, ValueError):
        raise ValueError(f"reward must be a real number in [0, 1], got {reward!r}") from None
    if not 0.0 <= r <= 1.0:  # also rejects NaN
        raise ValueError(f"reward must be in [0, 1], got {reward!r}")
    return r


def _sample(rng: np.random.Generator, p: np.ndarray) -> int:
    """One index drawn from the (possibly unnormalised) weights ``p`` by inversion."""
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
    return min(i, len(p) - 1)


#: Largest arm count for which :func:`successive_inclusion` enumerates the draws exactly.
EXACT_INCLUSION_MAX_ARMS = 16


def successive_inclusion(p: np.ndarray, k: int) -> np.ndarray:
    """``(K,)`` probability that each arm is among ``k`` arms drawn one after another without
    replacement, each draw proportional to ``p`` over the arms left (``rng.choice(...,
    replace=False, p=p)``, the base :meth:`Policy.pull_k`); sums to ``k``. Exact (every
    ordered draw enumerated as a set of drawn arms) for at most
    :data:`EXACT_INCLUSION_MAX_ARMS` arms.

    >>> successive_inclusion(np.array([0.5, 0.25, 0.25]), 2).round(6).tolist()
    [0.833333, 0.583333, 0.583333]
    """
    p = np.asarray(p, dtype=float)
    p = p / p.sum()
    n = len(p)
    if n > EXACT_INCLUSION_MAX_ARMS:
        raise ValueError(f"exact inclusion probabilities need at most "
                         f"{EXACT_INCLUSION_MAX_ARMS} arms, got {n}")
    states = {0: 1.0}  # bitmask of the arms drawn so far -> probability
    for _ in range(k):
        nxt: dict[int, float] = {}
        for mask, q in states.items():
            left = 1.0 - sum(p[i] for i in range(n) if mask >> i & 1)
            for i in range(n):
                if not mask >> i & 1 and p[i] > 0:
                    nxt[mask | 1 << i] = nxt.get(mask | 1 << i, 0.0) + q * p[i] / left
        states = nxt
    out = np.zeros(n)
    for mask, q in states.items():
        for i in range(n):
            if mask >> i & 1:
                out[i] += q
    return out


def _logsumexp(x: np.ndarray) -> float:
    m = float(x.max())
    return m + math.log(float(np.exp(x - m).sum()))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


# --------------------------------------------------------------------------------------------
# the contract
# --------------------------------------------------------------------------------------------


class Policy(abc.ABC):
    """A bandit policy over ``n_arms`` arms with rewards in ``[0, 1]``.

    Subclasses implement ``_pull``, ``_update`` and :meth:`probabilities` (and usually
    ``_pull_k``, ``_update_k`` and :meth:`scores`); the public methods validate arguments and
    keep the shared statistics.

    Args:
        n_arms: number of arms ``K >= 1``.
        seed: seed of the policy's generator ``np.random.default_rng(seed)``; the same seed gives
            the same pulls for the same rewards. ``None`` draws fresh OS entropy.

    Attributes:
        counts: ``(K,)`` int64, times each arm was returned by ``pull``/``pull_k``.
        n_obs: ``(K,)`` int64, rewards observed per arm.
        reward_sum: ``(K,)`` float64, sum of the observed rewards per arm.
        t: total number of rewards observed (``update`` adds 1, ``update_k`` adds ``k``).
        rng: the policy's ``np.random.Generator``.

    Hyper-parameters are keyword-only constructor arguments stored under the same attribute
    name, so ``repr`` and :meth:`clone` work for every policy:

    >>> from paperlib.engine.stochastic_bandits import Uniform
    >>> policy = Uniform(4, seed=1)
    >>> policy
    Uniform(n_arms=4, seed=1)
    >>> policy.clone(seed=2)
    Uniform(n_arms=4, seed=2)
    >>> arms = policy.pull_k(3)
    >>> len(set(arms)), int(policy.counts.sum())
    (3, 3)
    >>> policy.update_k(arms, [0.0, 0.5, 1.0]); policy.t
    3
    >>> policy.update(0, 1.5)
    Traceback (most recent call last):
        ...
    ValueError: reward must be in [0, 1], got 1.5
    """

    def __init__(self, n_arms: int, *, seed: int | None = 0) -> None:
        self.n_arms = _check_int(n_arms, "n_arms", 1)
        if seed is not None:
            seed = _check_int(seed, "seed", 0)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.counts = np.zeros(self.n_arms, dtype=np.int64)
        self.n_obs = np.zeros(self.n_arms, dtype=np.int64)
        self.reward_sum = np.zeros(self.n_arms, dtype=np.float64)
        self.t = 0

    # -- public API ---------------------------------------------------------------------------

    def pull(self) -> int:
        """Choose one arm."""
        arm = int(self._pull())
        self.counts[arm] += 1
        return arm

    def pull_k(self, k: int) -> list[int]:
        """Choose ``k`` distinct arms, ``1 <= k <= n_arms``."""
        k = _check_int(k, "k", 1, self.n_arms)
        arms = [int(a) for a in self._pull_k(k)]
        self.counts[arms] += 1
        return arms

    def update(self, arm: int, reward: float) -> None:
        """Observe ``reward`` in ``[0, 1]`` for ``arm``."""
        arm = self._check_arm(arm)
        reward = _check_reward(reward)
        self._update(arm, reward)
        self._record(arm, reward)

    def update_k(self, arms: Sequence[int], rewards: Sequence[float]) -> None:
        """Observe the rewards of the distinct ``arms`` returned together by :meth:`pull_k`.

        The default treats them as consecutive single updates; the Exp3 family overrides it to
        importance-weight by each arm's inclusion probability in the k-set.
        """
        if len(arms) != len(rewards):
            raise ValueError(f"got {len(arms)} arms but {len(rewards)} rewards")
        if not 1 <= len(arms) <= self.n_arms:
            raise ValueError(f"update_k needs between 1 and {self.n_arms} arms, got {len(arms)}")
        arm_list = [self._check_arm(a) for a in arms]
        if len(set(arm_list)) != len(arm_list):
            raise ValueError(f"arms must be distinct, got {arm_list}")
        reward_list = [_check_reward(r) for r in rewards]
        self._update_k(np.asarray(arm_list, dtype=np.intp), np.asarray(reward_list))
        for a, r in zip(arm_list, reward_list, strict=True):
            self._record(a, r)

    @abc.abstractmethod
    def probabilities(self) -> np.ndarray:
        """``(K,)`` probability that :meth:`pull` returns each arm now (non-negative, sums to 1)."""

    def scores(self) -> np.ndarray:
        """``(K,)`` the policy's internal per-arm statistic (default: mean observed rewards)."""
        return self.mean_rewards()

    def mean_rewards(self) -> np.ndarray:
        """``(K,)`` empirical mean reward per arm (0 for arms never observed)."""
        return self.reward_sum / np.maximum(self.n_obs, 1)

    def clone(self, **overrides: Any) -> Policy:
        """A fresh policy with the same hyper-parameters, except ``overrides``."""
        params = {**self._params(), **overrides}
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self._params().items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks -----------------------------------------------------------------------

    @abc.abstractmethod
    def _pull(self) -> int: ...

    def _pull_k(self, k: int) -> Sequence[int]:
        """Default: ``k`` distinct arms sampled without replacement from :meth:`probabilities`."""
        p = self.probabilities()
        return self.rng.choice(self.n_arms, size=k, replace=False, p=p / p.sum()).tolist()

    @abc.abstractmethod
    def _update(self, arm: int, reward: float) -> None: ...

    def _update_k(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        for a, r in zip(arms.tolist(), rewards.tolist(), strict=True):
            self._update(a, r)

    # -- internals ----------------------------------------------------------------------------

    @classmethod
    def hyperparameters(cls) -> list[str]:
        """Names of the constructor's keyword arguments (``n_arms`` excluded)."""
        names = inspect.signature(cls.__init__).parameters
        return [n for n in names if n not in ("self", "n_arms")]

    def _params(self) -> dict[str, Any]:
        names = inspect.signature(type(self).__init__).parameters
        return {n: getattr(self, n) for n in names if n != "self"}

    def _check_arm(self, arm: Any) -> int:
        return _check_int(arm, "arm", 0, self.n_arms - 1)

    def _record(self, arm: int, reward: float) -> None:
        self.n_obs[arm] += 1
        self.reward_sum[arm] += reward
        self.t += 1
