"""Host synchronisations per training step, counted on CPU with a mock.

On CUDA every ``.item()``, ``float(t)``, ``int(t)``, ``bool(t)``, ``.tolist()``, ``.numpy()`` or
``.cpu()`` of a device tensor waits for the GPU to finish all queued work, so a step loop with
one of them cannot run ahead of the device. These tests count such calls made by paperlib's
code (PyTorch's internal calls on host-side tensors are not device syncs) during a real :class:`~paperlib.engine.retrain.Retrainer` round (CPU), at two round lengths, and take the
difference per step, so per-round work (importance estimates, logs) is not counted.

The bounds are the counts measured after issue 11 item 1: the finiteness check reads a
device-side flag every 50 steps and at the round's end (:class:`~paperlib.engine.finite.LossWatch`;
it was ``float(total)`` every step), the weight bandit reads a period's path-integral
contributions with one ``.tolist()`` every ``reselect_every`` steps (it was one ``float`` per
trained group), and the sample bandit still reads its reward once per step (its host-side
policy needs it before the next pull). GSS (its memory update) and ER-ACE (the classes seen)
still sync twice per step.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

import paperlib
from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import build_model
from paperlib.engine.plugins import RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import NewOnly, SeenData
from paperlib.engine.weights import AllWeights
from paperlib.method.methods import build_method

PAPERLIB = str(Path(paperlib.__file__).parent)
SYNC_METHODS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__")

#: The finiteness flag's reads: 1 or 2 in a 60-step difference (every 50 steps).
FLAG = 2 / 60

#: Host syncs per step measured on the current code (upper bounds; see the module docstring).
TODAY = {"finetune": FLAG, "full_retrain": FLAG, "scratch": FLAG, "replay": FLAG, "ewc": FLAG,
         "online_ewc": FLAG, "si": FLAG, "mas": FLAG, "importance_reg_only": FLAG,
         "bandit_samples_only": 1 + FLAG, "random_weights": 1 + FLAG,
         "bandit_weights_only": FLAG, "random_samples": FLAG, "bandit": 1 + FLAG,
         "mir": FLAG, "der": FLAG, "derpp": FLAG, "lwf": FLAG, "gss": 2 + FLAG,
         "er_ace": 2 + FLAG, "bandit_no_reg": 1 + FLAG, "bandit_all_weights": 1 + FLAG}


def _round_syncs(method: str, steps: int, monkeypatch: pytest.MonkeyPatch,
                 hparams: dict | None = None) -> int:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    shape, n_classes, n = (1, 8, 8), 10, 256

    def chunk(name: str) -> Chunk:
        return Chunk(torch.rand((n, *shape), generator=gen), torch.randint(10, (n,), generator=gen),
                     name)

    model = build_model("mlp", shape, n_classes, (32,))
    meter = ComputeMeter(model, shape)
    retrainer = Retrainer(TrainSettings(batch_size=32))
    built = build_method(method, hparams or {}, 1.0, 0)
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
CHECKED = ("finetune", "replay", "si", "bandit", "bandit_samples_only", "random_samples",
           "mir", "der", "lwf")


@pytest.mark.parametrize("method", CHECKED)
def test_host_syncs_per_step_do_not_grow(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    short, long = _round_syncs(method, 20, monkeypatch), _round_syncs(method, 80, monkeypatch)
    per_step = (long - short) / 60
    assert per_step <= TODAY[method] + 1e-9, (
        f"{method}: {per_step:.2f} host syncs per step, more than today's {TODAY[method]}")
    assert per_step >= 0


@pytest.mark.parametrize("method", ["bandit_weights_only", "bandit"])
def test_weight_bandit_reads_a_period_once(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A weight bandit that decides (k = 1 of several groups, a new draw every 3 steps) reads
    each period's contributions with one sync: 1/3 per step, plus the sample bandit's reward."""
    hp = {"k_groups": 1, "reselect_every": 3, "train_head_always": False}
    short = _round_syncs(method, 20, monkeypatch, hp)
    long = _round_syncs(method, 80, monkeypatch, hp)
    per_step = (long - short) / 60
    bound = 1 / 3 + FLAG + (1 if method == "bandit" else 0)
    assert 1 / 3 - 1e-9 <= per_step - (1 if method == "bandit" else 0) <= bound, per_step


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
