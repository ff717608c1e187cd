"""Weight scopes: which parameter groups a retraining step updates.

A scope answers ``select(step)`` with the names of the trainable groups; the retrainer sets
``requires_grad=False`` on every other group, so autograd computes no gradient for them (and,
below the lowest trainable group, runs no backward at all). Scopes are also
:class:`~paperlib.plugins.Plugin` objects, so the weight bandit can observe gradients and
parameter changes through the same hooks the regularisers use.
"""

from __future__ import annotations

import math

import torch

from paperlib.plugins import Plugin, RoundContext, StepContext


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
    among recent values (:class:`~paperlib.samples.QuantileScaler`).

    ``k_groups`` may be an int or a fraction of G (rounded up). The policy persists across
    rounds (the groups do not change); Exp3.M's exploration keeps every group reachable.
    """

    name = "weight_bandit"

    def __init__(self, k_groups: float = 0.5, reselect_every: int = 20, policy: str = "exp3m",
                 seed: int = 0, policy_kwargs: dict | None = None, reward: str = "share") -> None:
        super().__init__()
        if reward not in ("share", "per_param"):
            raise ValueError("reward must be 'share' or 'per_param'")
        from paperlib.samples import QuantileScaler

        self.reward, self.scaler = reward, QuantileScaler()
        self.k_groups, self.reselect_every = k_groups, reselect_every
        self.policy_name, self.seed = policy, seed
        self.policy_kwargs = policy_kwargs or {}
        self.policy = None

    def start_round(self, ctx: RoundContext, steps: int) -> None:
        from paperlib.bandits import make_policy

        super().start_round(ctx, steps)
        G = len(self.groups)
        k = self.k_groups if self.k_groups >= 1 else math.ceil(self.k_groups * G)
        self.k = int(min(G, max(1, k)))
        if self.policy is None:
            self.policy = make_policy(self.policy_name, G, seed=self.seed, **self.policy_kwargs)
        self.params = ctx.model.parameter_groups()
        self.n_params = {g: sum(p.numel() for p in ps) for g, ps in self.params.items()}
        self.round_index = ctx.round_index
        self.active: tuple[str, ...] = ()
        self.contrib: dict[str, torch.Tensor] = {}

    def _close_period(self) -> None:
        if not self.active:
            return
        arms = [self.groups.index(g) for g in self.active]
        if self.reward == "per_param":
            rewards = [self.scaler(float(self.contrib[g]) / self.n_params[g]) for g in self.active]
        else:
            c = {g: max(float(v), 0.0) for g, v in self.contrib.items()}
            total = sum(c.values())
            rewards = [c[g] / total if total > 0 else 0.0 for g in self.active]
        if self.k == len(self.groups):
            return
        if self.k == 1:
            self.policy.update(arms[0], rewards[0])
        else:
            self.policy.update_k(arms, rewards)

    def select(self, step: int) -> tuple[str, ...]:
        if step % self.reselect_every == 0:
            self._close_period()
            arms = self.policy.pull_k(self.k)
            self.active = tuple(self.groups[a] for a in sorted(arms))
            self.contrib = {g: torch.zeros(()) for g in self.active}
            probs = self.policy.probabilities()
            for i, g in enumerate(self.groups):
                self.log.append({"round": self.round_index, "step": step, "group": g,
                                 "trained": g in self.active, "probability": float(probs[i])})
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
