"""Weight scopes: which parameter groups a retraining step updates.

A scope answers ``select(step)`` with the names of the trainable groups; the retrainer sets
``requires_grad=False`` on every other group, so autograd computes no gradient for them (and,
below the lowest trainable group, runs no backward at all). Scopes are also
:class:`~paperlib.engine.plugins.Plugin` objects, so the weight bandit can observe gradients and
parameter changes through the same hooks the regularisers use.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from paperlib.engine.plugins import Plugin, RoundContext, StepContext


class WeightScope(Plugin):
    """Contract: ``start_round(ctx, steps)``, then ``select(step)`` before every step."""

    name = "scope"

    def __init__(self) -> None:
        self.log: list[dict[str, object]] = []

    def start_round(self, ctx: RoundContext, steps: int) -> None:
        self.groups = list(ctx.model.parameter_groups())

    def select(self, step: int) -> tuple[str, ...]:
        raise NotImplementedError


class AllWeights(WeightScope):
    """Every parameter group trains at every step."""

    name = "all"

    def select(self, step: int) -> tuple[str, ...]:
        return tuple(self.groups)


class FixedSubset(WeightScope):
    """A fixed set of groups trains (e.g. ``("head",)`` for last-layer fine-tuning)."""

    name = "fixed"

    def __init__(self, groups: tuple[str, ...]) -> None:
        super().__init__()
        self.fixed = tuple(groups)

    def start_round(self, ctx: RoundContext, steps: int) -> None:
        super().start_round(ctx, steps)
        unknown = set(self.fixed) - set(self.groups)
        if unknown:
            raise ValueError(f"unknown parameter groups {sorted(unknown)}; model has {self.groups}")

    def select(self, step: int) -> tuple[str, ...]:
        return self.fixed


class WeightBandit(WeightScope):
    """The paper's weight bandit (our reconstruction, NOTES.md): arms are parameter groups;
    every ``reselect_every`` steps a k-of-G policy (default Exp3.M) picks ``k`` groups to train
    and freezes the rest. When a period ends, each trained group ``g`` is rewarded by its share
    of the loss decrease, the path integral Synaptic Intelligence accumulates::

        c_g = sum_{steps in period} sum_{i in g} -grad_i * delta_theta_i
        reward_g = max(c_g, 0) / sum_{h trained} max(c_h, 0)         (in [0, 1])

    That is ``reward="share"`` (NOTES.md). It favours groups with many parameters, and with
    ``k = 1`` it only says whether the loss went down. ``reward="per_param"`` (ours) rewards
    ``c_g / n_g`` (the path integral per parameter of the group) scaled to [0, 1] by its rank
    among recent values (:class:`~paperlib.engine.rewards.QuantileScaler`).

    ``k_groups`` may be an int or a fraction of G (rounded up). The policy persists across
    rounds (the groups do not change); Exp3.M's exploration keeps every group reachable.

    ``train_head_always`` (default; ours): the output layer ``head`` trains at every step and
    counts as one of the ``k``, and the bandit picks the other ``k - 1`` among the remaining
    groups, so new classes always reach the logits. False: the head is an arm like any other.

    The log's ``probability`` is each group's inclusion probability in the k-set actually
    drawn (:func:`inclusion_probabilities`; 1 for the always-trained head).
    """

    name = "weight_bandit"

    def __init__(self, k_groups: float = 0.5, reselect_every: int = 20, policy: str = "exp3m",
                 seed: int = 0, policy_kwargs: dict | None = None, reward: str = "share",
                 train_head_always: bool = True) -> None:
        super().__init__()
        if reward not in ("share", "per_param"):
            raise ValueError("reward must be 'share' or 'per_param'")
        from paperlib.engine.rewards import QuantileScaler

        self.reward, self.scaler = reward, QuantileScaler()
        self.k_groups, self.reselect_every = k_groups, reselect_every
        self.policy_name, self.seed = policy, seed
        self.policy_kwargs = policy_kwargs or {}
        self.train_head_always = train_head_always
        self.policy = None

    def start_round(self, ctx: RoundContext, steps: int) -> None:
        from paperlib.engine.bandits import make_policy

        super().start_round(ctx, steps)
        G = len(self.groups)
        k = self.k_groups if self.k_groups >= 1 else math.ceil(self.k_groups * G)
        self.k = int(min(G, max(1, k)))
        self.always = ("head",) if self.train_head_always and "head" in self.groups and G > 1 else ()
        self.arms = [g for g in self.groups if g not in self.always]
        self.k_arms = self.k - len(self.always)
        if self.policy is None:
            self.policy = make_policy(self.policy_name, len(self.arms), seed=self.seed,
                                      **self.policy_kwargs)
        self.params = ctx.model.parameter_groups()
        self.n_params = {g: sum(p.numel() for p in ps) for g, ps in self.params.items()}
        self.round_index = ctx.round_index
        self.active: tuple[str, ...] = ()
        self.contrib: dict[str, torch.Tensor] = {}

    def _bandit_decides(self) -> bool:
        return 0 < self.k_arms < len(self.arms)

    def _close_period(self) -> None:
        if not self.active or not self._bandit_decides():
            return
        drawn = [g for g in self.active if g in self.arms]
        arms = [self.arms.index(g) for g in drawn]
        # the period's path-integral contributions, read with one host sync (issue 11)
        dev = next(iter(self.contrib.values())).device
        for v in self.contrib.values():
            dev = v.device if v.device.type != "cpu" else dev
        read = dict(zip(self.contrib, torch.stack([v.to(dev) for v in self.contrib.values()])
                        .tolist(), strict=True))
        if self.reward == "per_param":
            rewards = [self.scaler(read[g] / self.n_params[g]) for g in drawn]
        else:  # share of the loss decrease among every trained group (the head included)
            c = {g: max(v, 0.0) for g, v in read.items()}
            total = sum(c.values())
            rewards = [c[g] / total if total > 0 else 0.0 for g in drawn]
        if self.k_arms == 1:
            self.policy.update(arms[0], rewards[0])
        else:
            self.policy.update_k(arms, rewards)

    def select(self, step: int) -> tuple[str, ...]:
        if step % self.reselect_every == 0:
            self._close_period()
            incl = dict.fromkeys(self.always, 1.0)
            if self._bandit_decides():
                p = inclusion_probabilities(self.policy, self.k_arms)
                incl.update({g: float(p[i]) for i, g in enumerate(self.arms)})
                drawn = {self.arms[a] for a in self.policy.pull_k(self.k_arms)}
            else:
                drawn = set(self.arms) if self.k_arms > 0 else set()
                incl.update({g: float(g in drawn) for g in self.arms})
            self.active = tuple(g for g in self.groups if g in drawn or g in self.always)
            self.contrib = {g: torch.zeros(()) for g in self.active}
            for g in self.groups:
                self.log.append({"round": self.round_index, "step": step, "group": g,
                                 "trained": g in self.active, "probability": incl[g]})
        return self.active

    def _grad_dot_params(self) -> dict[str, torch.Tensor]:
        """``sum_i g_i * theta_i`` per active group (0-dim tensors, no host sync)."""
        out = {}
        for g in self.active:
            terms = [torch.dot(p.grad.flatten(), p.detach().flatten())
                     for p in self.params[g] if p.grad is not None]
            out[g] = torch.stack(terms).sum() if terms else torch.zeros(())
        return out

    def before_update(self, step: StepContext) -> None:
        # The gradient is fixed between this hook and after_step (the optimizer only changes
        # parameters), so -g . delta_theta = g . theta_before - g . theta_after: two dot
        # products instead of copying the parameters (float32 cancellation is ~1e-6 relative).
        self._before = self._grad_dot_params()

    def after_step(self, step: StepContext) -> None:
        after = self._grad_dot_params()
        for g, before in self._before.items():
            self.contrib[g] = self.contrib[g].to(before.device) + (before - after[g])

    def after_round(self, ctx: RoundContext) -> None:
        self._close_period()
        self.active = ()


def inclusion_probabilities(policy, k: int) -> np.ndarray:  # noqa: ANN001 - bandits.Policy
    """``(K,)`` probability that each arm is in the k-set ``policy.pull_k(k)`` draws now
    (sums to ``k``): Exp3.M's DepRound marginals, ``k / K`` for the uniform policy, the top-k
    indicator for UCB1, the exact successive-sampling marginals for policies that draw k arms
    without replacement from :meth:`probabilities` (the base ``pull_k``; Exp3, Exp3.S), and a
    Monte-Carlo estimate (2000 draws on a copy; the policy's own generator is untouched)
    otherwise.

    >>> from paperlib.engine.bandits import make_policy
    >>> inclusion_probabilities(make_policy("uniform", 4), 2).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> p = inclusion_probabilities(make_policy("exp3", 3), 2)
    >>> p.round(6).tolist(), round(float(p.sum()), 9)
    ([0.666667, 0.666667, 0.666667], 2.0)
    """
    from paperlib.engine.bandit_policy import EXACT_INCLUSION_MAX_ARMS, successive_inclusion
    from paperlib.engine.bandits import UCB1, Policy, Uniform

    n = policy.n_arms
    if hasattr(policy, "marginals"):
        return np.asarray(policy.marginals(k), dtype=float)
    if k == 1 and type(policy)._pull_k is Policy._pull_k:
        return np.asarray(policy.probabilities(), dtype=float)
    if isinstance(policy, Uniform):
        return np.full(n, k / n)
    if isinstance(policy, UCB1):
        out = np.zeros(n)
        out[np.argsort(-policy.scores(), kind="stable")[:k]] = 1.0
        return out
    if type(policy)._pull_k is Policy._pull_k and n <= EXACT_INCLUSION_MAX_ARMS:
        return successive_inclusion(policy.probabilities(), k)
    import copy

    clone = copy.deepcopy(policy)
    counts = np.zeros(n)
    for _ in range(2000):
        counts[clone.pull_k(k)] += 1
    return counts / 2000


class RandomWeights(WeightBandit):
    """Ablation: the weight bandit's k-of-G schedule with groups chosen uniformly at random."""

    name = "random_weights"

    def __init__(self, **kwargs: object) -> None:
        kwargs["policy"] = "uniform"
        super().__init__(**kwargs)

    def before_update(self, step: StepContext) -> None:
        self._before = {}  # a uniform policy needs no reward: skip the path integral

    def _close_period(self) -> None:
        pass
