"""Multi-armed bandit policies behind one tiny contract: ``pull`` / ``update``.

The paper selects *which samples* (sample bandit) and *which weights* (weight bandit) to retrain
on with adversarial bandits; this module holds the policies, independent of what an arm means. The code is split by
family: the contract in :mod:`paperlib.engine.bandit_policy`, the adversarial policies in
:mod:`paperlib.engine.exp3`, the stochastic ones in :mod:`paperlib.engine.stochastic_bandits`; every name
is importable from here.

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

from typing import Any

from paperlib.engine.bandit_policy import Policy
from paperlib.engine.exp3 import Exp3, Exp3M, Exp3S, dep_round, exp3_gamma, exp3_regret_bound
from paperlib.engine.stochastic_bandits import (
    UCB1,
    EpsilonGreedy,
    ThompsonSampling,
    Uniform,
    ucb1_regret_bound,
)

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
