"""The paper's regulariser: synapse + neuron importance (:class:`SynapseNeuronImportance`),
reconstructed from the authors' earlier code. Registered as ``sni`` in
:mod:`paperlib.method.regularizers`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from paperlib.engine.plugins import RoundContext, StepContext

if TYPE_CHECKING:  # pragma: no cover
    pass

from paperlib.method.importance import (
    Importance,
    PathIntegral,
    Regularizer,
    _batch_importance,
    _draw,
    _mask_for,
    _mode,
    _neuron_term,
    _quadratic,
    _report,
    _snapshot,
    fisher_and_neuron_importance,
    mas_importance,
    neuron_importance,
    squared_batch_gradients,
)


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
        neuron_cache: the served model's block outputs ``h(x; theta_old)`` are cached per
            round for the samples of :attr:`~paperlib.engine.plugins.RoundContext.batch_pool`
            (the anchors all at once, or each row the first time a batch draws it; charged as
            one forward per computed sample: :meth:`_served_outputs`) and looked up by the batch's rows
            (:attr:`~paperlib.engine.plugins.StepContext.index`) (ours). False: one served-model
            forward of the batch per step (charged), the authors' way. Both run the served model
            in the training model's mode; for a batch-norm network a cached row's outputs use
            the statistics of the rows first computed with it instead of its later batches'.
        neuron_anchors: the cached neuron term covers only the batch's rows among a random set
            of this many pool samples per round (256, ours, issue 8): the penalty's mean over
            those rows estimates the mean over the batch, and the served forwards it needs are
            bounded by the anchor count instead of the pool's size. ``None``: every row.
        shared_pass: with ``importance="fisher"`` and the neuron term, estimate both
            importances in one forward+backward per mini-batch
            (:func:`~paperlib.method.importance.fisher_and_neuron_importance`), not one each.
    """

    name = "sni"
    IMPORTANCES = ("fisher", "mas", "si")
    MODES = ("round", "batch")

    def __init__(self, lam: float = 1.0, lam_synapse: float = 1e-3, lam_neuron: float = 1e-3,
                 importance: str = "fisher", use_neuron_term: bool = True,
                 neuron_mode: str = "round", importance_samples: int = 1024,
                 batch_size: int = 256, si_xi: float = 0.1, neuron_cache: bool = True,
                 neuron_anchors: int | None = 256, shared_pass: bool = True) -> None:
        super().__init__(lam)
        self.neuron_cache, self.shared_pass = neuron_cache, shared_pass
        if neuron_anchors is not None and neuron_anchors < 1:
            raise ValueError("neuron_anchors must be >= 1 or None")
        self.neuron_anchors = neuron_anchors
        self._cache: list[torch.Tensor] | None = None
        self._anchor: torch.Tensor | None = None
        self._check_choice("importance", importance, self.IMPORTANCES)
        self._check_choice("neuron_mode", neuron_mode, self.MODES)
        self.lam_synapse, self.lam_neuron, self.importance = lam_synapse, lam_neuron, importance
        self.use_neuron_term = self.needs_hidden = use_neuron_term
        self.neuron_mode, self.importance_samples = neuron_mode, importance_samples
        self.batch_size, self.si_xi = batch_size, si_xi
        self.path = PathIntegral(si_xi) if importance == "si" else None
        self.inert_in_round0 = self.path is None  # SI's path integral runs in round 0 too
        self.anchor: Importance | None = None
        self.omega_s: Importance | None = None
        self.omega_n: list[torch.Tensor] | None = None

    def before_round(self, ctx: RoundContext) -> None:
        if self.path is not None:
            self.path.begin_round(ctx.model)
        self.anchor = self.omega_s = self.omega_n = self._cache = self._anchor = None
        if ctx.served_model is None:
            return
        served, meter = ctx.served_model, ctx.meter
        self.anchor = _snapshot(served)
        if self.neuron_mode == "round" and (self.use_neuron_term or self.importance != "si"):
            x, y, classes = _draw(ctx, self.importance_samples, "seen")
            if self.use_neuron_term and self.importance == "fisher" and self.shared_pass:
                self.omega_s, self.omega_n = fisher_and_neuron_importance(
                    served, x, y, classes, meter=meter)
                return
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
            _report(ctx.meter, len(step.y), weights=need_s)
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
            hidden = step.hidden
            if h_old is None and self.neuron_cache and step.index is not None \
                    and ctx.batch_pool is not None:
                rows = self._anchor_rows(ctx, step.index)
                if rows.numel() == 0:  # no anchor sample in this batch: no neuron term
                    return self.lam * total
                hidden = [h[rows] for h in hidden]
                h_old = self._served_outputs(ctx, step.index[rows], len(step.y))
            if h_old is None:
                with torch.no_grad(), _mode(ctx.served_model, train=ctx.model.training):
                    h_old = ctx.served_model(step.x, return_hidden=True)[1]
                _report(ctx.meter, len(step.y), backward=False)
            total = total + self.lam_neuron * _neuron_term(hidden, h_old, omega_n)
        return self.lam * total

    def _anchor_rows(self, ctx: RoundContext, index: torch.Tensor) -> torch.Tensor:
        """Positions in the batch (``(A,)`` int64) of the round's anchor samples: a random
        subset of ``neuron_anchors`` rows of the batch pool, drawn at the round's first step
        with a generator seeded by the round (``None``: every row is an anchor)."""
        if self.neuron_anchors is None:
            return torch.arange(len(index), device=index.device)
        if self._anchor is None:
            n = len(ctx.batch_pool[0])
            seed = int(ctx.generator.initial_seed()) * 1000 + ctx.round_index
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            self._anchor = torch.zeros(n, dtype=torch.bool, device=index.device)
            self._anchor[pick[:self.neuron_anchors].to(index.device)] = True
        return self._anchor[index].nonzero().flatten()

    @torch.no_grad()
    def _served_outputs(self, ctx: RoundContext, index: torch.Tensor,
                        batch_size: int) -> list[torch.Tensor]:
        """The served model's block outputs ``(B, ...)`` for the batch rows ``index`` of
        ``ctx.batch_pool``, from a per-round cache, in the training model's mode (batch-norm
        running statistics untouched), charged as one forward pass per computed row; never a
        served forward per step.

        With anchors (``neuron_anchors`` set) the first call computes every anchor row in one
        forward (at most ``neuron_anchors`` rows a round; a round's batches reach nearly all of
        them anyway, and one forward of 256 rows costs far less time than a few rows on every
        step). Without anchors the cache fills lazily: a row is computed the first time a batch
        draws it, so a round pays for the distinct samples its batches use, at most one forward
        over the pool.

        Batch norm in train mode normalises by the forwarded rows' own statistics, which a
        handful of missing rows (or one: an error) cannot give; there the first call computes
        every anchor row (the whole pool if ``neuron_anchors`` is None) in seeded random
        batches of about ``batch_size`` (the training batch's size), charged likewise."""
        pool = ctx.batch_pool[0]
        if self._cache is None:
            self._have = torch.zeros(len(pool), dtype=torch.bool, device=pool.device)
        missing = index[~self._have[index]].unique()
        if missing.numel():
            parts = [missing]
            batch_norm = ctx.model.training and any(
                isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                for m in ctx.served_model.modules())
            if self._anchor is not None and not batch_norm:
                parts = [(self._anchor & ~self._have).nonzero().flatten()]
            elif batch_norm:
                todo = ~self._have if self._anchor is None else self._anchor & ~self._have
                todo = todo.nonzero().flatten()
                gen = torch.Generator().manual_seed(ctx.round_index)
                todo = todo[torch.randperm(len(todo), generator=gen).to(todo.device)]
                parts = list(todo.tensor_split(max(1, -(-len(todo) // batch_size))))
            with _mode(ctx.served_model, train=ctx.model.training):
                for rows in parts:
                    hs = ctx.served_model(pool[rows], return_hidden=True)[1]
                    if self._cache is None:
                        self._cache = [h.new_zeros((len(pool), *h.shape[1:])) for h in hs]
                    for c, h in zip(self._cache, hs, strict=True):
                        c[rows] = h
                    self._have[rows] = True
                    _report(ctx.meter, len(rows), backward=False)
        return [c[index] for c in self._cache]

    def before_update(self, step: StepContext) -> None:
        if self.path is not None:
            self.path.record(step.round.model, None, step.grad_scale)

    def after_step(self, step: StepContext) -> None:
        if self.path is not None:
            self.path.accumulate(step.round.model)

    def after_round(self, ctx: RoundContext) -> None:
        self._cache = self._have = self._anchor = None  # the round's only per-sample state
