"""The field's regularisers the paper's method is compared with: Synaptic Intelligence, EWC, online EWC, MAS and a plain L2 anchor to the served model.
Registered by name in :mod:`paperlib.method.regularizers`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from paperlib.engine.plugins import RoundContext, StepContext

if TYPE_CHECKING:  # pragma: no cover
    pass

from paperlib.method.importance import (
    Classes,
    Importance,
    PathIntegral,
    Regularizer,
    _draw,
    _mode,
    _neuron_term,
    _quadratic,
    _report,
    _snapshot,
    fisher_diagonal,
    mas_importance,
)


class SynapticIntelligence(Regularizer):
    """Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017).

    ``R(theta) = c * sum_i Omega_i (theta_i - theta*_i)^2`` with ``Omega`` from
    :class:`PathIntegral` (accumulated from round 0 on, consolidated at each ``before_round``)
    and ``theta*`` the parameters at the start of the round (= the served model).

    Args:
        lam: ``c``; 1.0 (the SI Split-MNIST value; the SI paper scans 0.01-1).
        xi: damping ``xi``; 0.1, the SI paper's value for split MNIST (public code also uses 1e-3).
        task_gradient: if True, ``g`` is the unclipped total gradient (``p.grad /
            step.grad_scale``) minus SI's own penalty gradient ``2 c Omega (theta - theta*)``:
            the task-loss gradient of the SI paper (exact when SI is the only plugin, with or
            without gradient clipping). False uses ``p.grad`` as applied (total loss, after
            clipping, as Avalanche and Mammoth do).
    """

    name = "si"

    def __init__(self, lam: float = 1.0, xi: float = 0.1, task_gradient: bool = True) -> None:
        super().__init__(lam)
        self.xi, self.task_gradient = xi, task_gradient
        self.path = PathIntegral(xi)
        self.anchor: Importance | None = None

    def before_round(self, ctx: RoundContext) -> None:
        self.path.begin_round(ctx.model)
        self.anchor = _snapshot(ctx.model) if ctx.round_index > 0 else None

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        if self.anchor is None or not self.path.importance:
            return None
        return self.lam * _quadratic(step.round.model, self.anchor, self.path.importance)

    def _own_gradient(self, name: str, p: nn.Parameter) -> torch.Tensor:
        omega = self.path.importance.get(name)
        if self.anchor is None or omega is None:
            return torch.zeros_like(p)
        return 2.0 * self.lam * omega * (p.detach() - self.anchor[name])

    def before_update(self, step: StepContext) -> None:
        if self.task_gradient:
            self.path.record(step.round.model, self._own_gradient, step.grad_scale)
        else:
            self.path.record(step.round.model)

    def after_step(self, step: StepContext) -> None:
        self.path.accumulate(step.round.model)


class EWC(Regularizer):
    """Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), one anchor per round.

    At every ``before_round`` from round 1 on, the empirical Fisher ``F`` of the served model
    (:func:`fisher_diagonal`) on ``importance_samples`` samples of ``ctx.previous_chunk`` (the
    last round's data, i.e. the last "task") is stored with ``theta* = served parameters``;
    ``R(theta) = lam/2 * sum_tasks sum_i F_t,i (theta_i - theta*_t,i)^2``.
    Memory grows by two model copies per round (``self.tasks``).

    Args:
        lam: 100 (typical 1e1-1e4 with a mean-over-samples Fisher; the EWC paper tunes it).
        importance_samples: samples per Fisher estimate; batch_size: vmap chunk.
    """

    inert_in_round0 = True  # nothing to anchor to before a model is served

    name = "ewc"

    def __init__(self, lam: float = 100.0, importance_samples: int = 1024,
                 batch_size: int = 256) -> None:
        super().__init__(lam)
        self.importance_samples, self.batch_size = importance_samples, batch_size
        self.tasks: list[tuple[Importance, Importance]] = []

    def before_round(self, ctx: RoundContext) -> None:
        if ctx.served_model is None:
            return
        x, y, classes = _draw(ctx, self.importance_samples, "previous")
        fisher = fisher_diagonal(ctx.served_model, x, y, classes, self.batch_size, ctx.meter)
        self.tasks.append((_snapshot(ctx.served_model), fisher))

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        if step.round.served_model is None or not self.tasks:
            return None
        model = step.round.model
        total = sum(_quadratic(model, anchor, f) for anchor, f in self.tasks)
        return self.lam / 2 * total


class _DecayedImportance(Regularizer):
    """One anchor (the served model) and one importance, ``Omega <- gamma * Omega + Omega_new``
    at each ``before_round`` (``Omega_new`` from ``_estimate`` on ``importance_samples``
    samples of ``ctx.previous_chunk``); ``R = lam * scale * sum_i Omega_i (theta_i -
    theta*_i)^2``."""

    inert_in_round0 = True  # nothing to anchor to before a model is served

    scale = 1.0

    def __init__(self, lam: float, gamma: float, importance_samples: int,
                 batch_size: int) -> None:
        super().__init__(lam)
        self.gamma, self.importance_samples, self.batch_size = gamma, importance_samples, batch_size
        self.importance: Importance | None = None
        self.anchor: Importance | None = None

    def _estimate(self, ctx: RoundContext, x: torch.Tensor, y: torch.Tensor,
                  classes: Classes) -> Importance:
        raise NotImplementedError

    def before_round(self, ctx: RoundContext) -> None:
        if ctx.served_model is None:
            return
        x, y, classes = _draw(ctx, self.importance_samples, "previous")
        new = self._estimate(ctx, x, y, classes)
        old = self.importance
        self.importance = new if old is None else {n: self.gamma * old[n] + v
                                                   for n, v in new.items()}
        self.anchor = _snapshot(ctx.served_model)

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        if step.round.served_model is None or self.anchor is None:
            return None
        return self.lam * self.scale * _quadratic(step.round.model, self.anchor, self.importance)


class OnlineEWC(_DecayedImportance):
    """Online EWC (Schwarz et al., ICML 2018 "Progress & Compress"; cf. EWC++, Chaudhry et al.
    2018): a single anchor ``theta*`` = served model and ``F <- gamma F + F_new`` with
    ``F_new`` the empirical Fisher on ``ctx.previous_chunk``;
    ``R(theta) = lam/2 * sum_i F_i (theta_i - theta*_i)^2``.

    Args:
        lam: 100 (as :class:`EWC`). gamma: 0.9 (our choice; 1.0 sums all Fishers with the
            latest anchor, Schwarz et al. use gamma < 1 to forget old tasks' Fisher slowly).
    """

    name = "online_ewc"
    scale = 0.5

    def __init__(self, lam: float = 100.0, gamma: float = 0.9, importance_samples: int = 1024,
                 batch_size: int = 256) -> None:
        super().__init__(lam, gamma, importance_samples, batch_size)

    def _estimate(self, ctx: RoundContext, x: torch.Tensor, y: torch.Tensor,
                  classes: Classes) -> Importance:
        return fisher_diagonal(ctx.served_model, x, y, classes, self.batch_size, ctx.meter)


class MAS(_DecayedImportance):
    """Memory Aware Synapses (Aljundi et al., ECCV 2018): ``Omega`` from
    :func:`mas_importance` of the served model on ``ctx.previous_chunk``, summed across rounds
    (``gamma=1``: ``Omega <- Omega + Omega_new``, the MAS paper's accumulation over tasks);
    ``R(theta) = lam * sum_i Omega_i (theta_i - theta*_i)^2``, ``theta*`` = served model.

    Args:
        lam: 1.0 (MAS paper). The authors' earlier code used 1e-4 on its own importance scale.
        gamma: 1.0 (sum); < 1 gives a decayed sum.
    """

    name = "mas"

    def __init__(self, lam: float = 1.0, gamma: float = 1.0, importance_samples: int = 1024,
                 batch_size: int = 256) -> None:
        super().__init__(lam, gamma, importance_samples, batch_size)

    def _estimate(self, ctx: RoundContext, x: torch.Tensor, y: torch.Tensor,
                  classes: Classes) -> Importance:
        return mas_importance(ctx.served_model, x, classes, self.batch_size, ctx.meter)


class L2Anchor(Regularizer):
    """Unweighted L2 to the served model, the authors' simple comparison (NOTES.md)::

        R(theta) = lam * [ mean_p sum_i (theta_old,pi - theta_pi)^2
                         + use_neuron_term * mean_k sum_j mean_b (h_kj(theta_old) - h_kj(theta))^2 ]

    i.e. :class:`SynapseNeuronImportance` with every ``Omega`` = 1 and ``lam_synapse =
    lam_neuron = 1``. Args: lam (1e-3, the paper regulariser's lambda; our choice),
    use_neuron_term (False).
    """

    inert_in_round0 = True  # nothing to anchor to before a model is served

    name = "l2"

    def __init__(self, lam: float = 1e-3, use_neuron_term: bool = False) -> None:
        super().__init__(lam)
        self.use_neuron_term = self.needs_hidden = use_neuron_term
        self.anchor: Importance | None = None

    def before_round(self, ctx: RoundContext) -> None:
        self.anchor = None if ctx.served_model is None else _snapshot(ctx.served_model)

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        ctx = step.round
        if ctx.served_model is None or self.anchor is None:
            return None
        total = _quadratic(ctx.model, self.anchor, None) / len(self.anchor)
        if self.use_neuron_term:
            with torch.no_grad(), _mode(ctx.served_model, train=ctx.model.training):
                h_old = ctx.served_model(step.x, return_hidden=True)[1]
            _report(ctx.meter, len(step.y), backward=False)
            total = total + _neuron_term(step.hidden, h_old, None)
        return self.lam * total
