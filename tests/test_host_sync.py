"""Host synchronisations per training step, counted on CPU with a mock.

On CUDA every ``.item()``, ``float(t)``, ``int(t)``, ``bool(t)``, ``.tolist()``, ``.numpy()`` or
``.cpu()`` of a device tensor waits for the GPU to finish all queued work, so a step loop with
one of them cannot run ahead of the device. These tests count such calls made by paperlib's
code (PyTorch's internal calls on host-side tensors are not device syncs) during a real :class:`~paperlib.retrain.Retrainer` round (CPU), at two round lengths, and take the
difference per step, so per-round work (importance estimates, logs) is not counted.

The bounds are today's counts (issue 11, review in the README's GPU section): the finiteness
check (``float(total)``, one per step), the sample bandit's reward floats (two per step) and the
weight bandit's period close (one per trained group every ``reselect_every`` steps). When the
step loop accumulates them on the device instead, lower ``TODAY`` to 0.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

import paperlib
from paperlib.accounting import ComputeMeter
from paperlib.methods import build_method
from paperlib.models import build_model
from paperlib.plugins import RoundContext
from paperlib.retrain import Retrainer, TrainSettings
from paperlib.samples import NewOnly, SeenData
from paperlib.streams import Chunk
from paperlib.weights import AllWeights

PAPERLIB = str(Path(paperlib.__file__).parent)
SYNC_METHODS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__")

#: Host syncs per step measured on the current code (upper bounds; see the module docstring).
TODAY = {"finetune": 1.0, "full_retrain": 1.0, "scratch": 1.0, "replay": 1.0, "ewc": 1.0,
         "online_ewc": 1.0, "si": 1.0, "mas": 1.0, "importance_reg_only": 1.0,
         "bandit_samples_only": 3.0, "random_weights": 3.0, "bandit_weights_only": 1.05,
         "random_samples": 1.05, "bandit": 3.05}


def _round_syncs(method: str, steps: int, monkeypatch: pytest.MonkeyPatch) -> int:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    shape, n_classes, n = (1, 8, 8), 10, 256

    def chunk(name: str) -> Chunk:
        return Chunk(torch.rand((n, *shape), generator=gen), torch.randint(10, (n,), generator=gen),
                     name)

    model = build_model("mlp", shape, n_classes, (32,))
    meter = ComputeMeter(model, shape)
    retrainer = Retrainer(TrainSettings(batch_size=32))
    built = build_method(method, {}, 1.0, 0)
    seen = SeenData(None, "cpu", torch.Generator().manual_seed(0))
    first = chunk("a")
    ctx = RoundContext(0, model, None, first, None, seen, torch.device("cpu"), gen, meter)
    retrainer.run_round(ctx, NewOnly(1.0), AllWeights(), built.regularizers, steps=5)
    seen.add(first, 0)
    served = copy.deepcopy(model).eval()
    ctx = RoundContext(1, model, served, chunk("b"), first, seen, torch.device("cpu"), gen, meter)
    counts = {"n": 0}
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *a: object, _orig: object = original, **k: object) -> object:
            if sys._getframe(1).f_code.co_filename.startswith(PAPERLIB):
                counts["n"] += 1  # PyTorch's own calls (Adam's CPU step counters) do not sync
            return _orig(self, *a, **k)  # type: ignore[operator]

        monkeypatch.setattr(torch.Tensor, name, counted)
    try:
        retrainer.run_round(ctx, built.source, built.scope, built.regularizers, steps=steps)
    finally:
        monkeypatch.undo()
    return counts["n"]


# One method per distinct step path (the rest share these sources, scopes and plugins; their
# counts above were measured the same way).
CHECKED = ("finetune", "replay", "si", "bandit", "bandit_samples_only", "random_samples")


@pytest.mark.parametrize("method", CHECKED)
def test_host_syncs_per_step_do_not_grow(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    short, long = _round_syncs(method, 20, monkeypatch), _round_syncs(method, 80, monkeypatch)
    per_step = (long - short) / 60
    assert per_step <= TODAY[method] + 1e-9, (
        f"{method}: {per_step:.2f} host syncs per step, more than today's {TODAY[method]}")
    assert per_step >= 0


def test_the_counter_sees_a_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock counts: a loop with one ``float`` per step is seen as one sync per step."""
    counts = {"n": 0}
    original = torch.Tensor.__float__

    def counted(self: torch.Tensor) -> float:
        counts["n"] += 1
        return original(self)

    monkeypatch.setattr(torch.Tensor, "__float__", counted)
    for _ in range(7):
        float(torch.ones(()).sum())
    assert counts["n"] == 7
