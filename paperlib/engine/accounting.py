"""Compute accounting: FLOPs, gradient steps, samples, seconds and memory per retraining round.

FLOP model (multiply-add = 2 FLOPs, dense layers and convolutions only; activations, batch norm
and the optimizer update are ignored as lower order). For a network of parameter groups
``g_1..g_L`` in forward order with per-sample forward cost ``f_l``, one training step on a batch
of ``B`` samples with trainable set ``T`` costs::

    forward            B * sum_l f_l
    weight gradients   B * sum_l [l in T] * f_l
    input gradients    B * sum_l [some k < l is in T] * f_l

so a frozen group saves its weight-gradient work, and groups *below* the lowest trainable group
save their backward pass entirely (autograd never reaches them). With every group trainable a
step costs about ``3 * forward`` minus the first layer's input gradient, the usual rule of thumb.

>>> from paperlib.engine.models import mlp
>>> net = mlp((1, 8, 8), 10, widths=(32, 16))
>>> meter = ComputeMeter(net)
>>> meter.group_flops   # per-sample forward FLOPs: 2*64*32, 2*32*16, 2*16*10
{'fc1': 4096.0, 'fc2': 1024.0, 'head': 320.0}
>>> meter.step_flops(batch_size=1, trainable={'fc1', 'fc2', 'head'})   # 5440 + 5440 + (1024 + 320)
12224.0
>>> meter.step_flops(batch_size=1, trainable={'head'})                 # 5440 + 320 + 0
5760.0
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class RoundCost:
    """Cost of one retraining round.

    Attributes:
        retrain_seconds: wall-clock seconds from the round's first hook to its last step
            (includes importance refreshes and reward evaluations; excludes evaluation).
        grad_steps: optimizer steps taken.
        samples_processed: training samples fed through forward+backward (sum of batch sizes).
        train_flops: estimated FLOPs of training steps plus every extra forward/backward pass
            the sample source or regularisers reported.
        trainable_fraction: parameter-count-weighted fraction of the model trainable, averaged
            over the round's steps (1.0 = every weight updated each step).
        peak_memory_bytes: CUDA: ``torch.cuda.max_memory_allocated`` during the round; CPU:
            the process's resident-set high-water mark (``ru_maxrss``), which never decreases.
    """

    retrain_seconds: float
    grad_steps: int
    samples_processed: int
    train_flops: float
    trainable_fraction: float
    peak_memory_bytes: int


def _per_sample_forward_flops(model: nn.Module, groups: dict[str, list[nn.Parameter]],
                              input_shape: tuple[int, ...]) -> dict[str, float]:
    """Measure each group's per-sample forward FLOPs with hooks on Linear and Conv2d modules."""
    param_to_group = {id(p): name for name, params in groups.items() for p in params}
    flops = dict.fromkeys(groups, 0.0)
    handles = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        group = param_to_group.get(id(module.weight))
        if group is None:
            return
        if isinstance(module, nn.Linear):
            flops[group] += 2.0 * module.in_features * module.out_features
        else:  # Conv2d
            k = module.weight[0].numel()  # c_in/groups * kh * kw
            flops[group] += 2.0 * k * output[0].numel()

    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            handles.append(module.register_forward_hook(hook))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return flops


def _infer_input_shape(model: nn.Module) -> tuple[int, ...]:
    first = next(m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d))
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ValueError("pass input_shape for convolutional models")


class ComputeMeter:
    """Counts the cost of retraining rounds for a model with named parameter groups."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...] | None = None) -> None:
        groups = model.parameter_groups()
        self.group_names = list(groups)
        self.group_params = {name: sum(p.numel() for p in ps) for name, ps in groups.items()}
        self.total_params = sum(self.group_params.values())
        self.group_flops = _per_sample_forward_flops(
            model, groups, tuple(input_shape) if input_shape else _infer_input_shape(model))
        self.forward_flops_per_sample = sum(self.group_flops.values())
        self._cuda = next(model.parameters()).is_cuda
        self._reset()

    def _reset(self) -> None:
        self.steps = 0
        self.samples = 0
        self.flops = 0.0
        self._fraction_sum = 0.0

    # --- pure cost model -------------------------------------------------------------------
    def step_flops(self, batch_size: int, trainable: Iterable[str]) -> float:
        """FLOPs of one training step (forward + backward) with the given trainable groups."""
        trainable = set(trainable)
        total, below = 0.0, False
        for name in self.group_names:
            f = self.group_flops[name]
            total += f                              # forward
            if name in trainable:
                total += f                          # weight gradient
            if below:
                total += f                          # gradient w.r.t. this group's input
            below = below or name in trainable
        return batch_size * total

    def trainable_fraction(self, trainable: Iterable[str]) -> float:
        """Fraction of all parameters that belong to the trainable groups."""
        return sum(self.group_params[g] for g in set(trainable)) / self.total_params

    # --- round bookkeeping -----------------------------------------------------------------
    def start_round(self) -> None:
        """Reset the counters and start the round's clock."""
        self._reset()
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self._t0 = time.perf_counter()

    def add_step(self, batch_size: int, trainable: Iterable[str]) -> None:
        """Record one optimizer step on ``batch_size`` samples with ``trainable`` groups."""
        trainable = tuple(trainable)
        self.steps += 1
        self.samples += batch_size
        self.flops += self.step_flops(batch_size, trainable)
        self._fraction_sum += self.trainable_fraction(trainable)

    def add_forward(self, batch_size: int) -> None:
        """Record an extra full forward pass (reward evaluation, served-model activations...)."""
        self.flops += batch_size * self.forward_flops_per_sample

    def add_backward(self, batch_size: int) -> None:
        """Record an extra full backward pass: weight gradients of every group and input
        gradients above the first (the data need no gradient), as inside a training step:
        ``step_flops(n, all) - n * forward``."""
        self.flops += batch_size * self.backward_flops_per_sample

    def add_activation_backward(self, batch_size: int) -> None:
        """Record an extra backward pass to the block outputs only (gradients w.r.t. the hidden
        activations, as neuron importance takes them): input gradients of every group above
        the first, no weight gradient."""
        self.flops += batch_size * self.activation_backward_flops_per_sample

    @property
    def backward_flops_per_sample(self) -> float:
        """Per-sample FLOPs of :meth:`add_backward` (2 forwards less the first group's)."""
        return self.step_flops(1, self.group_names) - self.forward_flops_per_sample

    @property
    def activation_backward_flops_per_sample(self) -> float:
        """Per-sample FLOPs of :meth:`add_activation_backward` (the groups above the first)."""
        return sum(self.group_flops[g] for g in self.group_names[1:])

    def end_round(self) -> RoundCost:
        """Stop the clock and return the round's :class:`RoundCost`."""
        if self._cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._t0
        if self._cuda:
            peak = int(torch.cuda.max_memory_allocated())
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = int(rss if sys.platform == "darwin" else rss * 1024)
        return RoundCost(
            retrain_seconds=seconds,
            grad_steps=self.steps,
            samples_processed=self.samples,
            train_flops=self.flops,
            trainable_fraction=self._fraction_sum / self.steps if self.steps else 0.0,
            peak_memory_bytes=peak,
        )
