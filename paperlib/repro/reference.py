"""Reference reproduction: the DER paper's Seq-MNIST class-incremental protocol, as Mammoth
runs it, through this library's engine and named methods.

Protocol (Buzzega et al., NeurIPS 2020, Table 2; Mammoth ``utils/best_args.py``): MNIST in 5
tasks of 2 classes, one shared head (:func:`paperlib.data.streams.split_class`); MLP 784-100-100-10
with Xavier-uniform weights and zero biases; 1 epoch per task; 10 stream samples per step plus
the memory batch; plain SGD (no momentum, no clipping); a reservoir memory updated after every
step with that step's stream samples. Unlike the serving runner, *every* task (the first one
too) is trained by the method itself, and the method never sees past data beyond its memory.
Score: the mean over tasks of the final accuracy on each task's test set (percent).

``ER`` is our ``replay`` with ``memory_update="step"``; ``DER++`` is ``derpp``.

>>> sorted(PAPER)[:2]
[('derpp', 200), ('derpp', 500)]
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn

from paperlib.data.streams import build_stream
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import mlp
from paperlib.engine.plugins import RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings, predict
from paperlib.engine.samples import SeenData
from paperlib.method.methods import build_method

#: DER paper, Table 2, Seq-MNIST class-IL accuracy (%): (method, buffer) -> accuracy.
PAPER: dict[tuple[str, int], float] = {("replay", 500): 86.1, ("derpp", 500): 91.0,
                                       ("replay", 200): 80.4, ("derpp", 200): 85.6}
#: Mammoth's best arguments for Seq-MNIST: (method, buffer) -> (lr, memory batch, hparams).
MAMMOTH: dict[tuple[str, int], tuple[float, int, dict[str, Any]]] = {
    ("replay", 500): (0.1, 10, {}),
    ("replay", 200): (0.01, 10, {}),
    ("derpp", 500): (0.03, 10, {"der_alpha": 1.0, "der_beta": 0.5}),
    ("derpp", 200): (0.03, 128, {"der_alpha": 0.2, "der_beta": 1.0}),
}
STREAM_BATCH = 10


def _xavier(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def seq_mnist(method: str, memory_size: int = 500, seed: int = 0, *,
              max_train: int | None = None, lr: float | None = None,
              hparams: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``method`` (``replay`` or ``derpp``, or any method with the memory hyper-parameters)
    on Seq-MNIST with Mammoth's best arguments for ``(method, memory_size)`` when known.

    Returns ``accuracy`` (percent, mean over tasks), ``task_accuracy`` (list), ``paper``,
    ``seconds`` (training), ``train_flops`` and ``grad_steps``.
    """
    best_lr, mem_batch, best_hp = MAMMOTH.get((method, memory_size), (0.03, STREAM_BATCH, {}))
    batch = STREAM_BATCH + mem_batch
    hp = {"memory_size": memory_size, "replay_ratio": mem_batch / batch,
          "budget_factor": batch / STREAM_BATCH, **best_hp, **(hparams or {})}
    if method == "replay":
        hp["memory_update"] = "step"
    stream = build_stream("mnist", "split_class", seed=seed, max_train=max_train, probe_size=None)
    torch.manual_seed(seed)
    model = mlp(stream.input_shape, stream.n_classes, widths=(100, 100))
    _xavier(model)
    meter = ComputeMeter(model, stream.input_shape)
    built = build_method(method, hp, epochs=1.0, seed=seed)
    settings = TrainSettings(batch_size=batch, lr=best_lr if lr is None else lr, optimizer="sgd",
                             grad_clip=None, momentum=0.0)
    retrainer, seen = Retrainer(settings), SeenData(capacity=None)  # never filled: memory only
    served, seconds, flops, steps = None, 0.0, 0.0, 0
    for t, chunk in enumerate([stream.initial, *stream.rounds]):
        gen = torch.Generator().manual_seed(seed * 100003 + t)
        ctx = RoundContext(t, model, served, chunk, None, seen, torch.device("cpu"), gen, meter)
        t0 = time.perf_counter()
        cost = retrainer.run_round(ctx, built.source, built.scope, built.regularizers)
        seconds += time.perf_counter() - t0
        flops, steps = flops + cost.train_flops, steps + cost.grad_steps
        served = copy.deepcopy(model).eval().requires_grad_(False)
    task_acc = [100.0 * float((predict(model, s.x) == s.y).float().mean())
                for s in stream.test_splits]
    return {"method": method, "memory_size": memory_size, "seed": seed,
            "accuracy": sum(task_acc) / len(task_acc), "task_accuracy": task_acc,
            "paper": PAPER.get((method, memory_size)), "seconds": seconds,
            "train_flops": flops, "grad_steps": steps}


def main() -> None:  # pragma: no cover - `python -m paperlib.repro.reference`
    for method in ("replay", "derpp"):
        for buffer in (500, 200):
            runs = [seq_mnist(method, buffer, seed) for seed in (0, 1, 2)]
            acc = sum(r["accuracy"] for r in runs) / len(runs)
            print(f"{method:7s} buffer {buffer}: {acc:.1f} (paper {PAPER[(method, buffer)]}), "
                  f"{sum(r['seconds'] for r in runs) / len(runs):.1f} s per run")


if __name__ == "__main__":  # pragma: no cover
    main()
