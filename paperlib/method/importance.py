"""Importance estimators, Synaptic Intelligence's :class:`PathIntegral`, and the
:class:`Regularizer` base class shared by every regulariser
(:mod:`paperlib.method.regularizers` has the overview, the registry and every name re-exported).

Estimators are plain functions, reusable and tested on their own. They read the model through
:func:`torch.func.functional_call` with detached parameters, so they never touch ``.grad`` or
``requires_grad`` of any model, and they run it in eval mode. Each returns ``{parameter name:
tensor of the parameter's shape}`` (or, for neurons, one tensor per block) and reports its
passes to ``meter`` if given.
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

from paperlib.engine.models import class_mask, frozen_bn_stats, masked_logits
from paperlib.engine.plugins import Plugin, RoundContext

if TYPE_CHECKING:  # pragma: no cover
    from paperlib.engine.accounting import ComputeMeter

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
    leaves its running statistics unchanged (:func:`~paperlib.engine.models.frozen_bn_stats`)."""
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


def _report(meter: ComputeMeter | None, n: int, backward: bool = True,
            weights: bool = True) -> None:
    """Report one extra forward pass over ``n`` samples to ``meter``, and with ``backward``
    its backward: to the weights (:meth:`ComputeMeter.add_backward`) or, ``weights=False``, to
    the block outputs only (:meth:`ComputeMeter.add_activation_backward`)."""
    if meter is not None:
        meter.add_forward(n)
        if backward and weights:
            meter.add_backward(n)
        elif backward:
            meter.add_activation_backward(n)


class _WeightedSquares(torch.autograd.Function):
    """``sum_t sum_i omega_t,i (theta_t,i - anchor_t,i)^2`` over ``n`` tensors, with its
    gradient ``2 omega (theta - anchor)`` written by hand: a few multi-tensor (foreach) kernels
    instead of an autograd graph of several operations per tensor (the penalty's own time per
    step fell to about a third for the MLPs here, measured: 1.4 to 0.42 ms).
    ``apply(n, *params, *anchors, *omegas)``; no omegas means ``omega = 1``."""

    @staticmethod
    def forward(ctx, n: int, *tensors: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        params, anchors, omegas = tensors[:n], tensors[n:2 * n], tensors[2 * n:]
        diffs = torch._foreach_sub(params, anchors)
        weighted = torch._foreach_mul(diffs, omegas) if omegas else diffs
        ctx.weighted, ctx.n_inputs = weighted, len(tensors)
        return torch.stack([torch.dot(w.flatten(), d.flatten())
                            for w, d in zip(weighted, diffs, strict=True)]).sum()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple:  # noqa: ANN001
        grads = torch._foreach_mul(ctx.weighted, 2.0 * grad_out)
        return (None, *grads, *[None] * (ctx.n_inputs - len(grads)))


def _quadratic(model: nn.Module, anchor: Importance, omega: Importance | None) -> torch.Tensor:
    """``sum over trainable tensors of sum_i omega_i (theta_i - anchor_i)^2`` (omega None = 1),
    a scalar differentiable in the model's parameters.

    Frozen parameters (``requires_grad=False``) are skipped: they cannot change this step."""
    params, anchors, omegas = [], [], []
    for n, p in model.named_parameters():
        if not p.requires_grad or n not in anchor:
            continue
        params.append(p)
        anchors.append(anchor[n])
        if omega is not None:
            omegas.append(omega[n])
    if not params:
        ref = next(iter(anchor.values()))
        return torch.zeros((), device=ref.device, dtype=ref.dtype)
    return _WeightedSquares.apply(len(params), *params, *anchors, *omegas)


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
    return _squared_gradients(model, x, y, classes, batch_size, meter, synapses=True,
                              neurons=False)[0]


def fisher_and_neuron_importance(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                                 classes: Classes = None, batch_size: int = 128,
                                 meter: ComputeMeter | None = None
                                 ) -> tuple[Importance, list[torch.Tensor]]:
    """:func:`squared_batch_gradients` and :func:`neuron_importance` from one forward and one
    backward pass per mini-batch of ``batch_size`` (instead of one each): the gradient of the
    *summed* cross-entropy gives every sample's activation gradients, and divided by the batch's
    size the gradient of its mean, which is what the synapse importance squares. Returns
    ``(Omega^s, Omega^n)`` as the two functions do (equal when their batch sizes are, tested)."""
    return _squared_gradients(model, x, y, classes, batch_size, meter, synapses=True,
                              neurons=True)


def _squared_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Classes,
                       batch_size: int, meter: ComputeMeter | None, synapses: bool,
                       neurons: bool) -> tuple[Importance, list[torch.Tensor]]:
    """The loop behind the three estimators above: per mini-batch, one forward in eval mode and
    one backward of the summed (optionally head-masked) cross-entropy to the block outputs
    (``neurons``) and/or the parameters (``synapses``). Returns ``(Omega^s, Omega^n)``:
    ``Omega^s`` = mean over mini-batches of the squared gradient of the batch's *mean* loss
    (``{}`` unless ``synapses``), ``Omega^n_k`` = mean over samples of the squared activation
    gradients (``[]`` unless ``neurons``). One forward+backward over ``x`` is reported."""
    params = {n: p.detach().requires_grad_(synapses) for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    omega_s = {n: torch.zeros_like(p) for n, p in params.items()} if synapses else {}
    omega_n: list[torch.Tensor] | None = None
    n_batches = 0
    with _mode(model, train=False), torch.enable_grad():
        for s in range(0, len(x), batch_size):
            # with frozen parameters the input must need a gradient, or no h_k is in the graph
            xb = x[s:s + batch_size].detach().requires_grad_(not synapses)
            cb = classes[s:s + batch_size] if _per_sample(classes) else classes
            logits, hidden = functional_call(model, (params, buffers), (xb,),
                                             {"return_hidden": True})
            yb = y[s:s + batch_size]
            loss = F.cross_entropy(masked_logits(logits, cb), yb, reduction="sum")
            wrt = [*(hidden if neurons else []), *(params.values() if synapses else [])]
            grads = torch.autograd.grad(loss, wrt)
            if neurons:
                sq = [g.pow(2).sum(0) for g in grads[:len(hidden)]]
                omega_n = sq if omega_n is None else [t + q for t, q in zip(omega_n, sq, strict=True)]
            if synapses:
                for n, g in zip(params, grads[len(hidden) if neurons else 0:], strict=True):
                    omega_s[n] += (g / len(yb)).pow(2)
            n_batches += 1
    _report(meter, len(x), weights=synapses)
    return ({n: t / max(n_batches, 1) for n, t in omega_s.items()},
            [t / max(len(x), 1) for t in omega_n or []])


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
    return _squared_gradients(model, x, y, classes, batch_size, meter, synapses=False,
                              neurons=True)[1]


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
        clipping (:attr:`~paperlib.engine.plugins.StepContext.grad_scale`), so ``g`` is the unclipped
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
