"""Importance regularisers against forgetting: the paper's synapse + neuron importance term,
EWC, online EWC, Synaptic Intelligence, MAS and a plain L2 anchor.

Every regulariser is a :class:`~paperlib.plugins.Plugin`: it refreshes its importances at
``before_round`` from the *served* model (the frozen copy in ``ctx.served_model``), returns
``lam * term`` from ``penalty`` and, for SI, accumulates a path integral in
``before_update``/``after_step``. Round 0 (no served model) has no penalty.

Importance estimators are plain functions, reusable and tested on their own. They read the
model through :func:`torch.func.functional_call` with detached parameters, so they never touch
``.grad`` or ``requires_grad`` of any model, and they run it in eval mode (batch norm with running
statistics; only the per-step "batch" mode of :class:`SynapseNeuronImportance` runs the served
model in the training model's mode). Each returns ``{parameter name: tensor of the parameter's
shape}`` (or, for neurons, one tensor per block) and reports its passes to ``meter`` if given.

Multi-head (task-incremental) data: ``classes`` may be ``None`` (all logits), a sequence of class
ids (one head for every sample) or a boolean mask ``(C,)`` / ``(N, C)``, e.g. ``heads[y]`` from
:attr:`RoundContext.heads`; see :func:`masked_logits`.

>>> sorted(REGULARIZERS)
['ewc', 'l2', 'mas', 'online_ewc', 'si', 'sni']
>>> make_regularizer("ewc", lam=10.0).lam
10.0
>>> make_regularizer("ewk")
Traceback (most recent call last):
...
ValueError: unknown regulariser 'ewk'; choose one of: sni, ewc, online_ewc, si, mas, l2
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from paperlib.models import class_mask, frozen_bn_stats, masked_logits
from paperlib.plugins import Plugin, RoundContext, StepContext

if TYPE_CHECKING:  # pragma: no cover
    from paperlib.accounting import ComputeMeter

Importance = dict[str, torch.Tensor]
Classes = Sequence[int] | torch.Tensor | None

#: Largest number of per-sample gradient entries (samples x parameters) held at once by vmap.
_VMAP_ELEMENTS = 1 << 25


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _per_sample(classes: Classes) -> bool:
    """Whether ``classes`` is a per-sample ``(N, C)`` mask."""
    return isinstance(classes, torch.Tensor) and classes.dim() == 2


def _mask_for(y: torch.Tensor, classes: Classes = None,
              heads: torch.Tensor | None = None) -> Classes:
    """The logits mask of labels ``y``: their heads ``heads[y]`` if a heads table is given,
    else ``classes``."""
    return heads.to(y.device)[y] if heads is not None else classes


@contextlib.contextmanager
def _mode(model: nn.Module, train: bool) -> Iterator[None]:
    """Run ``model`` in train/eval mode; in train mode batch norm uses batch statistics but
    leaves its running statistics unchanged (:func:`~paperlib.models.frozen_bn_stats`)."""
    was = model.training
    model.train(train)
    try:
        with frozen_bn_stats(model):
            yield
    finally:
        model.train(was)


def _snapshot(model: nn.Module) -> Importance:
    """Detached copies of every parameter: ``{name: tensor}``."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _report(meter: ComputeMeter | None, n: int, backward: bool = True) -> None:
    """Report one extra forward (and backward) pass over ``n`` samples to ``meter``."""
    if meter is not None:
        meter.add_forward(n)
        if backward:
            meter.add_backward(n)


def _quadratic(model: nn.Module, anchor: Importance, omega: Importance | None) -> torch.Tensor:
    """``sum over trainable tensors of sum_i omega_i (theta_i - anchor_i)^2`` (omega None = 1).

    Frozen parameters (``requires_grad=False``) are skipped: they cannot change this step."""
    total = None
    for n, p in model.named_parameters():
        if not p.requires_grad or n not in anchor:
            continue
        sq = (p - anchor[n]).pow(2)
        term = (sq if omega is None else omega[n] * sq).sum()
        total = term if total is None else total + term
    if total is None:
        ref = next(iter(anchor.values()))
        return torch.zeros((), device=ref.device, dtype=ref.dtype)
    return total


def _neuron_term(hidden: Sequence[torch.Tensor], hidden_old: Sequence[torch.Tensor],
                 omega: Sequence[torch.Tensor] | None) -> torch.Tensor:
    """``mean over tensors k of sum_j omega_kj * mean_b (h_old_bkj - h_bkj)^2`` (omega None = 1).

    ``hidden``/``hidden_old``: lists of ``(B, ...)``; ``omega``: per-sample shapes ``(...)``."""
    terms = []
    for k, (h, h_old) in enumerate(zip(hidden, hidden_old, strict=True)):
        sq = (h_old - h).pow(2)
        terms.append((sq if omega is None else omega[k] * sq).sum() / h.shape[0])
    return torch.stack(terms).mean()


def _draw(ctx: RoundContext, n: int, source: str) -> tuple[torch.Tensor, torch.Tensor, Classes]:
    """``n`` samples (without replacement, ``ctx.generator``) from ``previous_chunk`` or ``seen``
    (each falls back on the other when empty), on ``ctx.device``, with their logits mask."""
    chunk, seen = ctx.previous_chunk, ctx.seen
    use_seen = (source == "seen" and len(seen) > 0) or chunk is None or len(chunk) == 0
    if use_seen:
        idx = torch.randperm(len(seen), generator=ctx.generator)[:n].to(seen.device)
        x, y, classes = seen.x[idx], seen.y[idx], None
    else:
        idx = torch.randperm(len(chunk), generator=ctx.generator)[:n]
        x, y, classes = chunk.x[idx], chunk.y[idx], chunk.classes
    x, y = x.to(ctx.device), y.to(ctx.device)
    return x, y, _mask_for(y, classes, getattr(ctx, "heads", None))


# --------------------------------------------------------------------------------------------
# Importance estimators
# --------------------------------------------------------------------------------------------


def _mean_per_sample(model: nn.Module, x: torch.Tensor, args: Sequence[torch.Tensor],
                     sample_loss: Callable[..., torch.Tensor],
                     transform: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int) -> Importance:
    """``mean_n transform(grad_theta sample_loss(model(x_n), *args_n))`` per parameter, with
    per-sample gradients from ``vmap(grad(functional_call))`` in chunks of at most
    ``batch_size`` samples (fewer for large models, bounded by ``_VMAP_ELEMENTS``)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    n_params = sum(p.numel() for p in params.values())

    def one(p: Importance, xi: torch.Tensor, *ai: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return sample_loss(out, *(a.unsqueeze(0) for a in ai))

    per_sample = vmap(grad(one), in_dims=(None, 0, *[0] * len(args)))
    chunk = max(1, min(batch_size, _VMAP_ELEMENTS // max(n_params, 1)))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    with _mode(model, train=False):
        for s in range(0, len(x), chunk):
            grads = per_sample(params, x[s:s + chunk], *(a[s:s + chunk] for a in args))
            for n, g in grads.items():
                total[n] += transform(g).sum(0)
    return {n: t / max(len(x), 1) for n, t in total.items()}


def fisher_diagonal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Classes = None,
                    batch_size: int = 256, meter: ComputeMeter | None = None) -> Importance:
    """Empirical Fisher diagonal ``F_i = mean_n (d log p(y_n | x_n; theta) / d theta_i)^2``.

    Per-sample squared gradients (Kirkpatrick et al. 2017, EWC), the log-likelihood of the
    true label under the (optionally head-masked) softmax. ``x``: ``(N, *input)``, ``y``:
    ``(N,)``; ``classes``: see :func:`masked_logits` (a ``(N, C)`` mask is per sample).
    Returns ``{name: (param shape)}``.
    """
    per_sample = _per_sample(classes)
    args = [y, classes] if per_sample else [y]

    def nll(out: torch.Tensor, yi: torch.Tensor, *mask: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(masked_logits(out, mask[0] if per_sample else classes), yi)

    _report(meter, len(x))
    return _mean_per_sample(model, x, args, nll, torch.square, batch_size)


def squared_batch_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            classes: Classes = None, batch_size: int = 128,
                            meter: ComputeMeter | None = None) -> Importance:
    """The authors' synapse importance: ``Omega_i = mean_batches (d L_b / d theta_i)^2`` with
    ``L_b`` the *mean* cross-entropy of a mini-batch of ``batch_size`` (128, their batch size)
    under the (optionally head-masked) softmax; NOTES.md. One backward pass per mini-batch, so
    it is far cheaper than the per-sample :func:`fisher_diagonal`, and on a smaller scale
    (roughly ``1 / batch_size`` of it where per-sample gradients are uncorrelated), which is
    the scale the authors' ``lam_synapse = 1e-3`` was set for. Returns ``{name: (param shape)}``.
    """
    params = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    n_batches = 0
    with _mode(model, train=False), torch.enable_grad():
        for s in range(0, len(x), batch_size):
            cb = classes[s:s + batch_size] if _per_sample(classes) else classes
            logits = functional_call(model, (params, buffers), (x[s:s + batch_size],))
            loss = F.cross_entropy(masked_logits(logits, cb), y[s:s + batch_size])
            for (n, _), g in zip(params.items(), torch.autograd.grad(loss, list(params.values())),
                                 strict=True):
                total[n] += g.pow(2)
            n_batches += 1
    _report(meter, len(x))
    return {n: t / max(n_batches, 1) for n, t in total.items()}


def mas_importance(model: nn.Module, x: torch.Tensor, classes: Classes = None,
                   batch_size: int = 256, meter: ComputeMeter | None = None) -> Importance:
    """MAS importance ``Omega_i = mean_n |d (1/2 ||f(x_n; theta)||^2) / d theta_i|``
    (Aljundi et al. 2018, eq. 2-4: per-sample absolute gradients of the squared l2 norm of the
    logits). With ``classes`` (see :func:`masked_logits`) only those logits count.
    ``x``: ``(N, *input)``. Returns ``{name: (param shape)}``.
    """
    per_sample = _per_sample(classes)
    args = [classes] if per_sample else []

    def half_sq_norm(out: torch.Tensor, *mask: torch.Tensor) -> torch.Tensor:
        if classes is not None:
            out = out.masked_fill(~class_mask(mask[0] if per_sample else classes, out), 0.0)
        return 0.5 * out.pow(2).sum()

    _report(meter, len(x))
    return _mean_per_sample(model, x, args, half_sq_norm, torch.abs, batch_size)


def neuron_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Classes = None,
                      batch_size: int = 256,
                      meter: ComputeMeter | None = None) -> list[torch.Tensor]:
    """Neuron importance ``Omega^n_kj = mean_n (dL/dh_kj(x_n))^2`` for every block output
    ``h_k`` of ``model(x, return_hidden=True)`` (hidden blocks, then the logits).

    ``L`` is the cross-entropy *summed* over the batch, so each sample's activation gradient is
    its own (eval mode: no batch-norm coupling). Source: the neuron term of the authors' earlier
    code (NOTES.md). Returns one tensor per block with the per-sample shape ``h_k.shape[1:]``.
    """
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    total: list[torch.Tensor] | None = None
    with _mode(model, train=False):
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size].detach().requires_grad_(True)
            cb = classes[s:s + batch_size] if _per_sample(classes) else classes
            with torch.enable_grad():
                logits, hidden = functional_call(model, (params, buffers), (xb,),
                                                 {"return_hidden": True})
                loss = F.cross_entropy(masked_logits(logits, cb), y[s:s + batch_size],
                                       reduction="sum")
                grads = torch.autograd.grad(loss, hidden)
            sq = [g.pow(2).sum(0) for g in grads]
            total = sq if total is None else [t + q for t, q in zip(total, sq, strict=True)]
    _report(meter, len(x))
    return [t / len(x) for t in total or []]


def _batch_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Classes,
                      train: bool, need_params: bool
                      ) -> tuple[list[torch.Tensor], list[torch.Tensor], Importance | None]:
    """One forward+backward of ``model`` on the current mini-batch (the authors' per-batch
    importances): returns ``(h_old, Omega^n, Omega^s)`` with ``h_old`` the detached block
    outputs ``(B, ...)``, ``Omega^n_k = mean_b (dL_sum/dh_k)^2`` and ``Omega^s_i =
    (dL_mean/dtheta_i)^2``, the squared gradient of the mean cross-entropy (None unless
    ``need_params``)."""
    params = {n: p.detach().requires_grad_(need_params) for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    x = x.detach().requires_grad_(not need_params)  # makes every h_k part of the graph
    with _mode(model, train=train), torch.enable_grad():
        logits, hidden = functional_call(model, (params, buffers), (x,), {"return_hidden": True})
        loss = F.cross_entropy(masked_logits(logits, classes), y, reduction="sum")
        inputs = [*hidden, *params.values()] if need_params else hidden
        grads = torch.autograd.grad(loss, inputs)
    omega_n = [g.pow(2).mean(0) for g in grads[:len(hidden)]]
    omega_s = None
    if need_params:
        omega_s = {n: (g / len(y)).pow(2) for n, g in zip(params, grads[len(hidden):], strict=True)}
    return [h.detach() for h in hidden], omega_n, omega_s


# --------------------------------------------------------------------------------------------
# Regularisers
# --------------------------------------------------------------------------------------------


class Regularizer(Plugin):
    """Base class: a plugin whose ``penalty`` is ``lam * term`` (``None`` when inactive).

    Attributes:
        name: registry key (see :data:`REGULARIZERS`).
        lam: overall strength ``lambda >= 0``.
    """

    name = "regularizer"

    def __init__(self, lam: float) -> None:
        if lam < 0:
            raise ValueError(f"lam must be >= 0, not {lam}")
        self.lam = float(lam)

    @staticmethod
    def _check_choice(label: str, value: str, choices: Sequence[str]) -> None:
        if value not in choices:
            raise ValueError(f"{label} must be one of {', '.join(choices)}; got {value!r}")

    def __repr__(self) -> str:
        keys = inspect.signature(type(self)).parameters
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in keys if hasattr(self, k))
        return f"{type(self).__name__}({args})"


class PathIntegral:
    """Synaptic Intelligence's path integral (Zenke et al. 2017, eq. 3-5).

    Per step: ``omega_i += -g_i * delta_theta_i`` (``record`` stores ``theta`` and ``g`` before
    the update, ``accumulate`` uses the change after it). Parameters frozen that step
    (``requires_grad=False`` or no gradient) add nothing. At each ``begin_round`` after the first:
    ``Omega_i += max(0, omega_i / (Delta_i^2 + xi))`` with ``Delta = theta_now -
    theta_at_last_begin``, then ``omega`` is reset; ``importance`` holds ``Omega``
    (``{name: param shape}``). The clip at 0 is ours: with momentum or Adam a parameter's
    ``omega`` can be negative, which would make the penalty unbounded below.
    """

    def __init__(self, xi: float = 0.1) -> None:
        self.xi = xi
        self.importance: Importance = {}
        self.omega: Importance = {}
        self._start: Importance | None = None
        self._before: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def begin_round(self, model: nn.Module) -> None:
        """Consolidate the last round's ``omega`` into ``Omega`` and restart the integral."""
        now = _snapshot(model)
        if self._start is not None:
            for n, w in self.omega.items():
                delta = now[n] - self._start[n]
                upd = (w / (delta.pow(2) + self.xi)).clamp_min(0.0)
                self.importance[n] = self.importance.get(n, 0) + upd
        self.omega = {n: torch.zeros_like(p) for n, p in now.items()}
        self._start = now

    def record(self, model: nn.Module,
               correction: Callable[[str, nn.Parameter], torch.Tensor] | None = None,
               grad_scale: torch.Tensor | float = 1.0) -> None:
        """Before the optimiser step: keep ``(theta, g)`` of parameters that will move, with
        ``g = p.grad / grad_scale - correction(name, p)``: ``grad_scale`` undoes gradient
        clipping (:attr:`~paperlib.plugins.StepContext.grad_scale`), so ``g`` is the unclipped
        gradient whose dot product with the applied step is the loss change, and
        ``correction`` removes a term from it (e.g. a penalty's own, unclipped, gradient)."""
        self._before = {}
        for n, p in model.named_parameters():
            if p.requires_grad and p.grad is not None and n in self.omega:
                g = p.grad.detach() / grad_scale
                if correction is not None:
                    g = g - correction(n, p)
                self._before[n] = (p.detach().clone(), g)

    def accumulate(self, model: nn.Module) -> None:
        """After the optimiser step: ``omega += -g * (theta_after - theta_before)``."""
        params = dict(model.named_parameters())
        for n, (before, g) in self._before.items():
            self.omega[n] -= g * (params[n].detach() - before)
        self._before = {}


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


class SynapseNeuronImportance(Regularizer):
    """The paper's regulariser, reconstructed from the authors' earlier code (NOTES.md)::

        R(theta) = lam * [ lam_neuron  * mean_k sum_j Omega^n_kj mean_b (h_kj(x_b; theta_old)
                                                                   - h_kj(x_b; theta))^2
                         + lam_synapse * mean_p sum_i Omega^s_pi (theta_old,pi - theta_pi)^2 ]

    ``k`` runs over the block outputs (hidden blocks and logits, ``step.hidden``), ``p`` over
    all parameter tensors (the mean's denominator counts frozen tensors too, so the gradient
    does not depend on which groups are frozen), ``x_b`` over the current mini-batch and
    ``theta_old`` is the served model. ``h(x; theta_old)`` is computed each step in the
    training model's mode (batch norm: batch statistics, running statistics untouched), so the
    term is exactly zero at ``theta = theta_old``.

    Args:
        lam: overall multiplier (1.0). lam_synapse, lam_neuron: 1e-3 each (authors' code).
        importance: synapse ``Omega^s``: "fisher" (squared mini-batch gradients of the mean
            cross-entropy, the authors' estimator: :func:`squared_batch_gradients`), "mas" or
            "si" (an internal :class:`PathIntegral`, on the total-loss gradient).
        use_neuron_term: include the neuron term (needs ``step.hidden``).
        neuron_mode: "round" (ours): ``Omega^n`` (and fisher/mas ``Omega^s``) once per round on
            ``importance_samples`` samples of ``ctx.seen`` (everything seen before the round). "batch" (authors' code): both recomputed every step
            from the served model's cross-entropy on the current mini-batch (an extra
            forward+backward per step; fisher ``Omega^s`` = squared mini-batch gradient).
        si_xi: the path integral's damping (importance "si").
        neuron_cache: the served model's block outputs ``h(x; theta_old)`` are computed once
            per round for every sample the batches can come from
            (:attr:`~paperlib.plugins.RoundContext.batch_pool`, charged as one forward pass over
            it) and looked up by the batch's rows (:attr:`~paperlib.plugins.StepContext.index`)
            (ours). False: one served-model forward of the batch per step (charged), the
            authors' way. Both run the served model in the training model's mode; for a
            batch-norm network the cached outputs use the statistics of cache batches (same
            size, random composition) instead of the training batch's own.
    """

    name = "sni"
    IMPORTANCES = ("fisher", "mas", "si")
    MODES = ("round", "batch")

    def __init__(self, lam: float = 1.0, lam_synapse: float = 1e-3, lam_neuron: float = 1e-3,
                 importance: str = "fisher", use_neuron_term: bool = True,
                 neuron_mode: str = "round", importance_samples: int = 1024,
                 batch_size: int = 256, si_xi: float = 0.1, neuron_cache: bool = True) -> None:
        super().__init__(lam)
        self.neuron_cache = neuron_cache
        self._cache: list[torch.Tensor] | None = None
        self._check_choice("importance", importance, self.IMPORTANCES)
        self._check_choice("neuron_mode", neuron_mode, self.MODES)
        self.lam_synapse, self.lam_neuron, self.importance = lam_synapse, lam_neuron, importance
        self.use_neuron_term = self.needs_hidden = use_neuron_term
        self.neuron_mode, self.importance_samples = neuron_mode, importance_samples
        self.batch_size, self.si_xi = batch_size, si_xi
        self.path = PathIntegral(si_xi) if importance == "si" else None
        self.anchor: Importance | None = None
        self.omega_s: Importance | None = None
        self.omega_n: list[torch.Tensor] | None = None

    def before_round(self, ctx: RoundContext) -> None:
        if self.path is not None:
            self.path.begin_round(ctx.model)
        self.anchor = self.omega_s = self.omega_n = self._cache = None
        if ctx.served_model is None:
            return
        served, meter = ctx.served_model, ctx.meter
        self.anchor = _snapshot(served)
        if self.neuron_mode == "round" and (self.use_neuron_term or self.importance != "si"):
            x, y, classes = _draw(ctx, self.importance_samples, "seen")
            if self.use_neuron_term:
                self.omega_n = neuron_importance(served, x, y, classes, self.batch_size, meter)
            if self.importance == "fisher":
                self.omega_s = squared_batch_gradients(served, x, y, classes, meter=meter)
            elif self.importance == "mas":
                self.omega_s = mas_importance(served, x, classes, self.batch_size, meter)

    def _importances(self, step: StepContext
                     ) -> tuple[Importance | None, list[torch.Tensor] | None,
                                list[torch.Tensor] | None]:
        """``(Omega^s, Omega^n, h_old)`` for this step; ``h_old`` only in "batch" mode."""
        omega_s, omega_n, h_old = self.omega_s, self.omega_n, None
        ctx = step.round
        need_s = self.importance == "fisher"
        if self.neuron_mode == "batch" and (self.use_neuron_term or need_s):
            classes = _mask_for(step.y, ctx.new_chunk.classes, getattr(ctx, "heads", None))
            h_old, omega_n, batch_s = _batch_importance(
                ctx.served_model, step.x, step.y, classes, ctx.model.training, need_s)
            _report(ctx.meter, len(step.y))
            omega_s = batch_s if need_s else omega_s
        if self.neuron_mode == "batch" and self.importance == "mas":
            classes = _mask_for(step.y, ctx.new_chunk.classes, getattr(ctx, "heads", None))
            omega_s = mas_importance(ctx.served_model, step.x, classes, self.batch_size, ctx.meter)
        if self.path is not None:
            omega_s = self.path.importance or None
        return omega_s, omega_n, h_old

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        ctx = step.round
        if ctx.served_model is None or self.anchor is None:
            return None
        omega_s, omega_n, h_old = self._importances(step)
        total = torch.zeros((), device=step.logits.device, dtype=step.logits.dtype)
        if omega_s is not None:
            quad = _quadratic(ctx.model, self.anchor, omega_s) / len(self.anchor)
            total = total + self.lam_synapse * quad
        if self.use_neuron_term:
            if step.hidden is None:
                raise ValueError("the neuron term needs step.hidden (needs_hidden=True)")
            if h_old is None and self.neuron_cache and step.index is not None \
                    and ctx.batch_pool is not None:
                h_old = [h[step.index] for h in self._served_outputs(ctx, len(step.y))]
            if h_old is None:
                with torch.no_grad(), _mode(ctx.served_model, train=ctx.model.training):
                    h_old = ctx.served_model(step.x, return_hidden=True)[1]
                _report(ctx.meter, len(step.y), backward=False)
            total = total + self.lam_neuron * _neuron_term(step.hidden, h_old, omega_n)
        return self.lam * total

    @torch.no_grad()
    def _served_outputs(self, ctx: RoundContext, batch_size: int) -> list[torch.Tensor]:
        """The served model's block outputs ``(P, ...)`` on ``ctx.batch_pool``, computed at the
        round's first call (in batches of ``batch_size`` in a seeded random order, the training
        model's mode, batch-norm running statistics untouched) and charged as one forward pass
        over the ``P`` pool samples."""
        if self._cache is None:
            x = ctx.batch_pool[0]
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.round_index))
            order = order.to(x.device)
            parts: list[list[torch.Tensor]] = []
            with _mode(ctx.served_model, train=ctx.model.training):
                for s in range(0, len(x), batch_size):
                    parts.append(ctx.served_model(x[order[s:s + batch_size]], return_hidden=True)[1])
            cache = [torch.cat(hs) for hs in zip(*parts, strict=True)]
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(len(order), device=order.device)
            self._cache = [h[inverse] for h in cache]
            _report(ctx.meter, len(x), backward=False)
        return self._cache

    def before_update(self, step: StepContext) -> None:
        if self.path is not None:
            self.path.record(step.round.model, None, step.grad_scale)

    def after_step(self, step: StepContext) -> None:
        if self.path is not None:
            self.path.accumulate(step.round.model)

    def after_round(self, ctx: RoundContext) -> None:
        self._cache = None  # the served outputs are the round's only per-sample state


class L2Anchor(Regularizer):
    """Unweighted L2 to the served model, the authors' simple comparison (NOTES.md)::

        R(theta) = lam * [ mean_p sum_i (theta_old,pi - theta_pi)^2
                         + use_neuron_term * mean_k sum_j mean_b (h_kj(theta_old) - h_kj(theta))^2 ]

    i.e. :class:`SynapseNeuronImportance` with every ``Omega`` = 1 and ``lam_synapse =
    lam_neuron = 1``. Args: lam (1e-3, the paper regulariser's lambda; our choice),
    use_neuron_term (False).
    """

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


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

REGULARIZERS: dict[str, type[Regularizer]] = {
    "sni": SynapseNeuronImportance,
    "ewc": EWC,
    "online_ewc": OnlineEWC,
    "si": SynapticIntelligence,
    "mas": MAS,
    "l2": L2Anchor,
}


def make_regularizer(name: str, **kwargs: object) -> Regularizer:
    """Build a regulariser by registry name; unknown names or hyper-parameters raise a
    ``ValueError`` that lists the valid ones."""
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regulariser {name!r}; choose one of: {', '.join(REGULARIZERS)}")
    cls = REGULARIZERS[name]
    valid = list(inspect.signature(cls).parameters)
    bad = sorted(set(kwargs) - set(valid))
    if bad:
        raise ValueError(f"unknown hyper-parameter(s) {', '.join(bad)} for {name!r}; "
                         f"valid: {', '.join(valid)}")
    return cls(**kwargs)
