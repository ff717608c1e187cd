"""Importance regularisers against forgetting: the paper's synapse + neuron importance term,
EWC, online EWC, Synaptic Intelligence, MAS and a plain L2 anchor.

The code is split: estimators and the :class:`Regularizer` base in :mod:`paperlib.method.importance`,
the paper's regulariser in :mod:`paperlib.method.sni`, the field's in
:mod:`paperlib.method.baseline_regularizers`; this module holds the registry and re-exports every name.

Every regulariser is a :class:`~paperlib.engine.plugins.Plugin`: it refreshes its importances at
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

import inspect

from paperlib.engine.models import masked_logits
from paperlib.method.baseline_regularizers import (
    EWC,
    MAS,
    L2Anchor,
    OnlineEWC,
    SynapticIntelligence,
    _DecayedImportance,
)
from paperlib.method.importance import (
    Classes,
    Importance,
    PathIntegral,
    Regularizer,
    fisher_diagonal,
    mas_importance,
    neuron_importance,
    squared_batch_gradients,
)
from paperlib.method.sni import SynapseNeuronImportance

__all__ = [
    "EWC", "MAS", "REGULARIZERS", "Classes", "Importance", "L2Anchor", "OnlineEWC", "PathIntegral",
    "Regularizer", "SynapseNeuronImportance", "SynapticIntelligence", "_DecayedImportance",
    "fisher_diagonal", "make_regularizer", "masked_logits", "mas_importance", "neuron_importance",
    "squared_batch_gradients",
]


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
