"""Adversarial bandit policies: :class:`Exp3`, :class:`Exp3S` (switching arms) and
:class:`Exp3M` (k of K arms per round, with dependent rounding :func:`dep_round`), with their
tuning and regret bounds. See :mod:`paperlib.engine.bandits` for the contract and references."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from paperlib.engine.bandit_policy import (
    EXACT_INCLUSION_MAX_ARMS,
    Policy,
    _check_int,
    _check_real,
    _sample,
    _softmax,
    successive_inclusion,
)

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
        # importance weight: each arm's probability of being in the k-set that pull_k draws
        # (successively, without replacement), exact for up to EXACT_INCLUSION_MAX_ARMS arms;
        # min(1, k p) beyond (an approximation that under-credits the leading arms)
        p = self._probs()
        if self.n_arms <= EXACT_INCLUSION_MAX_ARMS:
            q = successive_inclusion(p, len(arms))[arms]
        else:
            q = np.minimum(1.0, len(arms) * p[arms])
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
