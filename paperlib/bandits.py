"""Multi-armed bandit policies behind one tiny contract: ``pull`` / ``update``.

The paper selects *which samples* (sample bandit) and *which weights* (weight bandit) to retrain
on with adversarial bandits; this module holds the policies, independent of what an arm means.

Contract (:class:`Policy`), rewards always in ``[0, 1]``::

    arm = policy.pull()                  # one arm
    policy.update(arm, reward)
    arms = policy.pull_k(k)              # k distinct arms
    policy.update_k(arms, rewards)       # update them together (one round)
    policy.probabilities()               # (K,) distribution of ``pull``, sums to 1
    policy.scores()                      # (K,) internal statistic, for plots
    policy.counts, policy.t              # pulls per arm, number of rewards observed

Policies, registered in :data:`POLICIES` and built by name with :func:`make_policy`:

===================  ========================================================================
``exp3``             :class:`Exp3`, adversarial (Auer et al. 2002)
``exp3s``            :class:`Exp3S`, adversarial with switching arms (Auer et al. 2002; used for
                     curricula by Graves et al. 2017)
``exp3m``            :class:`Exp3M`, adversarial, k of K arms per round (Uchiya et al. 2010)
``ucb1``             :class:`UCB1`, stochastic (Auer, Cesa-Bianchi & Fischer 2002)
``thompson``         :class:`ThompsonSampling`, Beta-Bernoulli (Agrawal & Goyal 2012)
``epsilon_greedy``   :class:`EpsilonGreedy`
``uniform``          :class:`Uniform`, the "random" baseline
===================  ========================================================================

>>> policy = make_policy("exp3", n_arms=3, gamma=0.3, seed=0)
>>> policy
Exp3(n_arms=3, gamma=0.3, seed=0)
>>> policy.probabilities().round(4).tolist()
[0.3333, 0.3333, 0.3333]
>>> for _ in range(200):          # arm 2 always pays, the others never do
...     arm = policy.pull()
...     policy.update(arm, 1.0 if arm == 2 else 0.0)
>>> p = policy.probabilities()
>>> bool(p.argmax() == 2), round(float(p.sum()), 12), round(float(p.min()), 4)  # floor gamma/K
(True, 1.0, 0.1)
>>> policy.t, int(policy.counts.sum())
(200, 200)

References:
    P. Auer, N. Cesa-Bianchi, Y. Freund, R. E. Schapire. The nonstochastic multiarmed bandit
    problem. SIAM J. Computing 32(1), 2002.
    P. Auer, N. Cesa-Bianchi, P. Fischer. Finite-time analysis of the multiarmed bandit problem.
    Machine Learning 47, 2002.
    T. Uchiya, A. Nakamura, M. Kudo. Algorithms for adversarial bandit problems with multiple
    plays. ALT 2010.
    R. Gandhi, S. Khuller, S. Parthasarathy, A. Srinivasan. Dependent rounding and its
    applications to approximation algorithms. J. ACM 53(3), 2006.
    S. Agrawal, N. Goyal. Analysis of Thompson sampling for the multi-armed bandit problem.
    COLT 2012.
    A. Graves, M. G. Bellemare, J. Menick, R. Munos, K. Kavukcuoglu. Automated curriculum
    learning for neural networks. ICML 2017.
"""

from __future__ import annotations

import abc
import inspect
import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "POLICIES",
    "EpsilonGreedy",
    "Exp3",
    "Exp3M",
    "Exp3S",
    "Policy",
    "ThompsonSampling",
    "UCB1",
    "Uniform",
    "dep_round",
    "exp3_gamma",
    "exp3_regret_bound",
    "make_policy",
    "ucb1_regret_bound",
]


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


# --------------------------------------------------------------------------------------------
# Exp3 family
# --------------------------------------------------------------------------------------------


def exp3_gamma(n_arms: int, gain_bound: float) -> float:
    r"""Exp3's exploration rate tuned for a known bound ``g`` on the best arm's total reward.

    Auer et al. (2002), Corollary 3.2: :math:`\gamma = \min\{1, \sqrt{K\ln K/((e-1)g)}\}`, for
    which the expected weak regret is at most :func:`exp3_regret_bound`. ``g = T`` always works
    since rewards are in ``[0, 1]``. (With one arm any ``gamma`` is optimal; 1 is returned.)

    >>> round(exp3_gamma(5, 5000), 4)
    0.0306
    """
    n_arms = _check_int(n_arms, "n_arms", 1)
    g = _check_real(gain_bound, "gain_bound", 0.0, math.inf, low_open=True)
    if n_arms == 1:
        return 1.0
    return min(1.0, math.sqrt(n_arms * math.log(n_arms) / ((math.e - 1.0) * g)))


def exp3_regret_bound(n_arms: int, gain_bound: float) -> float:
    r"""Exp3's expected weak-regret bound with :func:`exp3_gamma` (Auer et al. 2002, Cor. 3.2).

    :math:`G_{\max} - \mathbb{E}[G_{\mathrm{Exp3}}] \le 2\sqrt{e-1}\sqrt{gK\ln K}
    \le 2.63\sqrt{gK\ln K}` whenever ``g >= G_max`` (valid when ``exp3_gamma < 1``; otherwise
    the trivial bound ``g`` applies and the smaller one is returned).

    >>> round(exp3_regret_bound(5, 5000), 1)
    525.9
    """
    n_arms = _check_int(n_arms, "n_arms", 1)
    g = _check_real(gain_bound, "gain_bound", 0.0, math.inf, low_open=True)
    return min(g, 2.0 * math.sqrt(math.e - 1.0) * math.sqrt(g * n_arms * math.log(n_arms)))


class _LogWeightPolicy(Policy):
    """Shared state of the Exp3 family: ``log_weights`` with maximum 0, and a derived cache.

    Assigning ``log_weights`` (e.g. to restore a checkpoint) validates, shifts and invalidates
    the cached probabilities.
    """

    def __init__(self, n_arms: int, *, gamma: float, seed: int | None) -> None:
        super().__init__(n_arms, seed=seed)
        self.gamma = _check_real(gamma, "gamma", 0.0, 1.0, low_open=True)
        self._lw = np.zeros(self.n_arms)
        self._invalidate()

    @property
    def log_weights(self) -> np.ndarray:
        """``(K,)`` log-weights, shifted so that the maximum is 0 (read-only view)."""
        view = self._lw.view()
        view.flags.writeable = False
        return view

    @log_weights.setter
    def log_weights(self, value: Any) -> None:
        lw = np.array(value, dtype=np.float64)
        if lw.shape != (self.n_arms,):
            raise ValueError(f"log_weights must have shape ({self.n_arms},), got {lw.shape}")
        if np.isnan(lw).any() or np.isposinf(lw).any() or not np.isfinite(lw.max()):
            raise ValueError("log_weights must be < +inf, not NaN, and not all -inf")
        self._lw = lw - lw.max()
        self._invalidate()

    def scores(self) -> np.ndarray:
        """Log-weights (maximum 0)."""
        return self._lw.copy()

    def _invalidate(self) -> None:
        self._p: np.ndarray | None = None


class Exp3(_LogWeightPolicy):
    r"""Exp3: exponential weights for exploration and exploitation (Auer et al. 2002).

    With weights :math:`w_i` (initially 1) and exploration rate :math:`\gamma \in (0, 1]`:

    .. math::

        p_i = (1 - \gamma)\frac{w_i}{\sum_j w_j} + \frac{\gamma}{K}, \qquad
        \hat x_i = \frac{r}{p_i}\,[i = i_t], \qquad
        w_i \leftarrow w_i \exp(\gamma \hat x_i / K).

    ``log_weights`` are kept instead of the weights and shifted so their maximum is 0 after
    every update; since :math:`p_i \ge \gamma/K` an update moves a log-weight by at most 1, so
    nothing overflows and losing arms' weights underflow harmlessly to 0 (``p_i -> gamma/K``).

    ``pull_k(k)`` is the *top-k variant*: ``k`` distinct arms sampled without replacement with
    probabilities proportional to ``p`` (successive sampling), and ``update_k`` importance-weights
    with the approximate inclusion probability :math:`q_i = \min(1, k p_i)`, i.e.
    :math:`\hat x_i = r_i / q_i`. :class:`Exp3M` is the principled k-of-K algorithm.

    Args:
        gamma: exploration rate in ``(0, 1]``; see :func:`exp3_gamma` for the tuned value.

    >>> policy = Exp3(2, gamma=0.5, seed=0)
    >>> policy.update(0, 1.0)          # x_hat = 1 / 0.5 = 2, log w_0 += 0.5 * 2 / 2
    >>> policy.scores().tolist()        # log-weights, max shifted to 0
    [0.0, -0.5]
    >>> p = policy.probabilities(); round(float(p[0]), 4)   # 0.5 * e^.5 / (e^.5 + 1) + 0.25
    0.5612
    """

    def __init__(self, n_arms: int, *, gamma: float = 0.1, seed: int | None = 0) -> None:
        super().__init__(n_arms, gamma=gamma, seed=seed)

    def probabilities(self) -> np.ndarray:
        return self._probs().copy()

    def _invalidate(self) -> None:
        super()._invalidate()
        self._wsum = 0.0  # sum_j exp(log w_j), valid together with _p

    def _probs(self) -> np.ndarray:
        if self._p is None:
            w = np.exp(self._lw)  # max is 0: no overflow, and w.sum() >= 1
            self._wsum = float(w.sum())
            self._p = w * ((1.0 - self.gamma) / self._wsum) + self.gamma / self.n_arms
        return self._p

    def _pull(self) -> int:
        return _sample(self.rng, self._probs())

    def _update(self, arm: int, reward: float) -> None:
        gain = self.gamma * reward / (float(self._probs()[arm]) * self.n_arms)
        self._apply_gains(arm, gain)

    def _update_k(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        q = np.minimum(1.0, len(arms) * self._probs()[arms])
        self._apply_gains(arms, self.gamma * (rewards / q) / self.n_arms)

    def _apply_gains(self, arms: int | np.ndarray, gains: float | np.ndarray) -> None:
        """``log w_i += gain_i`` for ``i in arms`` (gains >= 0), then shift the maximum to 0.

        ``arms`` is one arm (with a float gain) or an index array (with an array of gains).
        """
        lw = self._lw
        if isinstance(arms, np.ndarray):
            if not gains.any():
                return  # zero rewards leave Exp3's weights (and the cache) unchanged
            lw[arms] += gains
            top = float(lw[arms].max())
        else:
            if gains == 0.0:
                return
            lw[arms] += gains
            top = float(lw[arms])
        if top > 0.0:  # gains are non-negative: only the updated arms can exceed the old max 0
            lw -= top
        self._invalidate()


class Exp3S(Exp3):
    r"""Exp3.S: Exp3 with weight sharing, competitive with switching arms (Auer et al. 2002).

    Same :math:`p_i` and :math:`\hat x_i` as :class:`Exp3`; the update mixes a fraction of the
    total weight back into every arm so that a once-bad arm can recover quickly:

    .. math::

        w_i \leftarrow w_i \exp(\gamma \hat x_i / K) + \frac{e\alpha}{K}\sum_j w_j,

    computed in log space, :math:`\log w_i \leftarrow \operatorname{logaddexp}(\log w_i +
    \gamma\hat x_i/K,\; \log(e\alpha/K) + \operatorname{logsumexp}_j \log w_j)`. Every weight
    stays above :math:`e\alpha/K` times the total, so the log-weights are bounded below. Auer et
    al. (Sec. 8) use :math:`\alpha = 1/T`; Graves et al. (2017) use Exp3.S to pick curriculum
    tasks. ``alpha = 0`` is plain Exp3.

    Args:
        gamma: exploration rate in ``(0, 1]``.
        alpha: sharing rate in ``[0, 1]``.

    >>> policy = Exp3S(3, gamma=0.2, alpha=0.01, seed=0)
    >>> for _ in range(2000):
    ...     policy.update(0, 1.0)
    >>> bool(policy.log_weights.min() > math.log(math.e * 0.01 / 3))   # floor from sharing
    True
    """

    def __init__(
        self, n_arms: int, *, gamma: float = 0.1, alpha: float = 1e-3, seed: int | None = 0
    ) -> None:
        super().__init__(n_arms, gamma=gamma, seed=seed)
        self.alpha = _check_real(alpha, "alpha", 0.0, 1.0)
        self._log_share = math.log(math.e * self.alpha / self.n_arms) if self.alpha > 0 else None

    def _apply_gains(self, arms: int | np.ndarray, gains: float | np.ndarray) -> None:
        if self._log_share is None:
            super()._apply_gains(arms, gains)
            return
        self._probs()  # sets self._wsum = sum_j w_j (old weights; max log-weight is 0)
        new = self._lw.copy()
        new[arms] += gains
        new = np.logaddexp(new, self._log_share + math.log(self._wsum))
        new -= new.max()
        self._lw = new
        self._invalidate()


def dep_round(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Dependent rounding (Gandhi et al. 2006): a random set with marginals ``probs``.

    ``probs`` in ``[0, 1]`` summing to an integer ``k``; returns ``k`` distinct sorted indices
    with :math:`P(i \in S) = p_i`. Repeatedly take two fractional entries :math:`p_i, p_j`, set
    :math:`a = \min(1-p_i, p_j)`, :math:`b = \min(p_i, 1-p_j)` and with probability
    :math:`b/(a+b)` move ``a`` from ``j`` to ``i``, else ``b`` from ``i`` to ``j``; each step
    keeps the sum and the expectations and makes at least one entry integral.

    >>> rng = np.random.default_rng(0)
    >>> p = np.array([0.9, 0.6, 0.3, 0.2])
    >>> hits = np.zeros(4)
    >>> for _ in range(4000):
    ...     s = dep_round(p, rng)
    ...     assert len(s) == 2
    ...     hits[s] += 1
    >>> (hits / 4000).round(1).tolist()
    [0.9, 0.6, 0.3, 0.2]
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    total = float(p.sum())
    k = round(total)
    if abs(total - k) > 1e-6 * max(1, len(p)):
        raise ValueError(f"probabilities must sum to an integer, got {total}")
    eps = 1e-12
    p = np.where(p < eps, 0.0, np.where(p > 1.0 - eps, 1.0, p)).tolist()
    frac = [i for i, v in enumerate(p) if 0.0 < v < 1.0]
    while len(frac) >= 2:
        i, j = frac[-1], frac[-2]
        a = min(1.0 - p[i], p[j])
        b = min(p[i], 1.0 - p[j])
        if rng.random() * (a + b) < b:
            p[i] += a
            p[j] -= a
        else:
            p[i] -= b
            p[j] += b
        for idx in (i, j):
            if p[idx] < eps:
                p[idx] = 0.0
            elif p[idx] > 1.0 - eps:
                p[idx] = 1.0
        frac = [idx for idx in frac if 0.0 < p[idx] < 1.0]
    # Round-off can leave one entry within ~eps of integral; rounding it is exact in theory.
    final = np.asarray(p)
    chosen = np.flatnonzero(final >= 0.5)
    if len(chosen) != k:  # only reachable through round-off; keep the k largest
        chosen = np.sort(np.argsort(-final, kind="stable")[:k])
    return chosen


class Exp3M(_LogWeightPolicy):
    r"""Exp3.M: Exp3 for choosing ``k`` of ``K`` arms per round (Uchiya, Nakamura, Kudo 2010).

    Per round with set size ``k`` and exploration rate :math:`\gamma`:

    1. *Capping.* If :math:`\max_i w_i \ge c\sum_j w_j` with
       :math:`c = (1/k - \gamma/K)/(1-\gamma)`, find :math:`\alpha_t` with
       :math:`\alpha_t / (\sum_{w_i \ge \alpha_t}\alpha_t + \sum_{w_i < \alpha_t} w_i) = c`, put
       :math:`S_0 = \{i : w_i \ge \alpha_t\}` and :math:`w'_i = \alpha_t` on :math:`S_0`
       (:math:`w'_i = w_i` elsewhere). This keeps every marginal at most 1.
    2. Marginals :math:`p_i = k\,((1-\gamma)\,w'_i/\sum_j w'_j + \gamma/K)`, summing to ``k``.
    3. Draw the set :math:`S_t` with :func:`dep_round` (exactly ``k`` arms, :math:`P(i\in S_t)
       = p_i`).
    4. :math:`\hat x_i = r_i/p_i` for :math:`i \in S_t`; for :math:`i \notin S_0`:
       :math:`w_i \leftarrow w_i\exp(k\gamma\hat x_i/K)`.

    Implemented on ``log_weights`` (max shifted to 0): the capped arms get share ``c`` and the
    others ``(1 - |S_0| c)`` times a softmax of their log-weights, so concentrated weights never
    divide by 0. An update moves a log-weight by at most 1 (:math:`p_i \ge k\gamma/K`). With
    ``k = 1`` nothing is ever capped (:math:`c \ge 1`) and this is exactly :class:`Exp3`; a
    1-set is then drawn directly from ``p`` (the same distribution as DepRound gives).

    ``pull()`` is ``pull_k(1)``; ``update_k(arms, rewards)`` treats the ``len(arms)`` arms as
    one round of the k-of-K game (so call it, not ``update``, after ``pull_k(k)`` with
    ``k > 1``). :meth:`marginals` gives the inclusion probabilities for any ``k`` and
    :meth:`probabilities` is ``marginals(self.k) / self.k``.

    Args:
        k: the default set size used by :meth:`probabilities`.
        gamma: exploration rate in ``(0, 1]``.

    >>> policy = Exp3M(4, k=2, gamma=0.2, seed=0)
    >>> policy.marginals(2).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> for _ in range(300):
    ...     arms = policy.pull_k(2)
    ...     policy.update_k(arms, [1.0 if a in (0, 1) else 0.0 for a in arms])
    >>> m = policy.marginals(2); m.round(3).tolist()          # floor k * gamma / K = 0.1
    [0.864, 0.936, 0.1, 0.1]
    >>> round(float(m.sum()), 12), round(float(policy.probabilities().sum()), 12)
    (2.0, 1.0)

    Capping: one dominant weight would give arm 0 a marginal above 1, so its weight is lowered
    to make ``p_0 = 1`` exactly and the other arms share the rest:

    >>> policy.log_weights = [0.0, -30.0, -30.0, -30.0]
    >>> policy.marginals(2).round(4).tolist()
    [1.0, 0.3333, 0.3333, 0.3333]
    """

    def __init__(
        self, n_arms: int, *, k: int = 1, gamma: float = 0.1, seed: int | None = 0
    ) -> None:
        super().__init__(n_arms, gamma=gamma, seed=seed)
        self.k = _check_int(k, "k", 1, self.n_arms)

    def marginals(self, k: int | None = None) -> np.ndarray:
        """``(K,)`` inclusion probabilities of a ``k``-set (each in ``[0, 1]``, sum ``k``)."""
        k = self.k if k is None else _check_int(k, "k", 1, self.n_arms)
        return self._marginals(k)[0].copy()

    def probabilities(self) -> np.ndarray:
        return self._marginals(self.k)[0] / self.k

    def _invalidate(self) -> None:
        super()._invalidate()
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def _marginals(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Marginals and the mask of capped arms ``S_0`` (``None``: none) for set size ``k``."""
        if k in self._cache:
            return self._cache[k]
        n, g, lw = self.n_arms, self.gamma, self._lw
        capped = None
        if k == n:
            p = np.ones(n)
        elif k == 1 or g == 1.0:  # c >= 1: no share can exceed it
            p = k * ((1.0 - g) * _softmax(lw) + g / n)
        else:
            c = (1.0 / k - g / n) / (1.0 - g)
            order = np.argsort(-lw, kind="stable")
            for m in range(k):  # cap the m largest; m <= k - 1 always suffices when k < K
                rest = order[m:]
                rest_share = (1.0 - m * c) * _softmax(lw[rest])
                if rest_share.max() <= c * (1.0 + 1e-12):
                    break
            share = np.empty(n)
            share[rest] = rest_share
            share[order[:m]] = c
            if m:
                capped = np.zeros(n, dtype=bool)
                capped[order[:m]] = True
            p = np.minimum(1.0, k * ((1.0 - g) * share + g / n))
        self._cache[k] = (p, capped)
        return p, capped

    def _pull(self) -> int:
        return _sample(self.rng, self._marginals(1)[0])

    def _pull_k(self, k: int) -> Sequence[int]:
        if k == 1:
            return [self._pull()]
        return dep_round(self._marginals(k)[0], self.rng).tolist()

    def _update(self, arm: int, reward: float) -> None:
        if reward == 0.0:
            return
        p = float(self._marginals(1)[0][arm])
        self._lw[arm] += self.gamma * reward / (p * self.n_arms)
        self._shift(float(self._lw[arm]))

    def _update_k(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        k = len(arms)
        p, capped = self._marginals(k)
        if capped is not None:
            keep = ~capped[arms]
            arms, rewards = arms[keep], rewards[keep]
        if not rewards.any():
            return
        self._lw[arms] += k * self.gamma * (rewards / p[arms]) / self.n_arms
        self._shift(float(self._lw[arms].max()))

    def _shift(self, top: float) -> None:
        """Shift the log-weights by the new maximum ``top`` if it grew past 0 (gains >= 0)."""
        if top > 0.0:
            self._lw -= top
        self._invalidate()


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


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

POLICIES: dict[str, type[Policy]] = {
    "exp3": Exp3,
    "exp3s": Exp3S,
    "exp3m": Exp3M,
    "ucb1": UCB1,
    "thompson": ThompsonSampling,
    "epsilon_greedy": EpsilonGreedy,
    "uniform": Uniform,
}
"""Policy classes by name, for :func:`make_policy` and configuration files."""


def make_policy(name: str, n_arms: int, *, seed: int | None = 0, **hyperparameters: Any) -> Policy:
    """Build the policy registered as ``name`` in :data:`POLICIES`.

    >>> make_policy("exp3s", 4, gamma=0.05, seed=3)
    Exp3S(n_arms=4, gamma=0.05, alpha=0.001, seed=3)
    >>> make_policy("exp4", 4)
    Traceback (most recent call last):
        ...
    ValueError: unknown policy 'exp4'; valid names: epsilon_greedy, exp3, exp3m, exp3s, thompson, ucb1, uniform
    >>> make_policy("ucb1", 4, gamma=0.1)
    Traceback (most recent call last):
        ...
    ValueError: UCB1 has no hyper-parameter 'gamma'; valid: seed
    """
    key = str(name).lower()
    if key not in POLICIES:
        valid = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; valid names: {valid}")
    cls = POLICIES[key]
    valid_hp = cls.hyperparameters()
    unknown = sorted(set(hyperparameters) - set(valid_hp))
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise ValueError(
            f"{cls.__name__} has no hyper-parameter {names}; valid: {', '.join(valid_hp)}"
        )
    return cls(n_arms, seed=seed, **hyperparameters)
