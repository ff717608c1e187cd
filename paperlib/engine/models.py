"""Networks with named parameter groups.

Every model is a :class:`BlockNet`: an ordered sequence of named blocks, each ending in its
activation. A *parameter group* is one block's parameters (one layer, with its batch norm), which
is the unit the weight bandit trains or freezes. ``forward(x, return_hidden=True)`` also returns
each hidden block's post-activation output, which the neuron-importance regulariser needs.

>>> net = mlp(input_shape=(1, 8, 8), n_classes=10, widths=(32, 16))
>>> list(net.parameter_groups())
['fc1', 'fc2', 'head']
>>> logits, hidden = net(torch.zeros(4, 1, 8, 8), return_hidden=True)
>>> tuple(logits.shape), [tuple(h.shape) for h in hidden]
((4, 10), [(4, 32), (4, 16), (4, 10)])
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import torch
from torch import nn

MODEL_NAMES = ("mlp", "lenet", "cifar_cnn", "tabular_mlp")


class BlockNet(nn.Module):
    """A feed-forward network made of named blocks; the last block (``head``) gives logits."""

    def __init__(self, blocks: Sequence[tuple[str, nn.Module]], arch: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(OrderedDict(blocks))
        self.arch = arch

    def forward(
        self, x: torch.Tensor, return_hidden: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Map inputs ``(B, *input_shape)`` to logits ``(B, n_classes)``.

        With ``return_hidden``, also return the list of every block's output (hidden blocks
        post-activation, then the logits).
        """
        hidden: list[torch.Tensor] = []
        for block in self.blocks.values():
            x = block(x)
            if return_hidden:
                hidden.append(x)
        return (x, hidden) if return_hidden else x

    def parameter_groups(self) -> OrderedDict[str, list[nn.Parameter]]:
        """Block name -> its trainable parameters, in forward order."""
        return OrderedDict(
            (name, list(block.parameters())) for name, block in self.blocks.items()
        )


def _flatten_linear(in_features: int, out_features: int, relu: bool = True) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, out_features)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mlp(input_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (256, 256)) -> BlockNet:
    """Fully connected ReLU network: ``fc1 .. fcL`` hidden blocks and a linear ``head``."""
    d = math.prod(input_shape)
    blocks: list[tuple[str, nn.Module]] = []
    for i, w in enumerate(widths, start=1):
        blocks.append((f"fc{i}", _flatten_linear(d, w)))
        d = w
    blocks.append(("head", nn.Linear(d, n_classes)))
    return BlockNet(blocks, arch="mlp")


def tabular_mlp(input_shape: Sequence[int], n_classes: int, widths: Sequence[int] = (64, 64)) -> BlockNet:
    """The MLP used on tabular drift streams (Elec2, Weather)."""
    net = mlp(input_shape, n_classes, widths)
    net.arch = "tabular_mlp"
    return net


def _conv_block(c_in: int, c_out: int, kernel: int, batch_norm: bool) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


def lenet(
    input_shape: Sequence[int], n_classes: int, channels: Sequence[int] = (32, 64),
    fc_width: int = 1024, batch_norm: bool = True,
) -> BlockNet:
    """LeNet-style CNN with batch norm from the authors' earlier code (NOTES.md):
    conv 5x5x32 - pool - conv 5x5x64 - pool - fc 1024 - fc n_classes."""
    c, h, w = input_shape
    blocks: list[tuple[str, nn.Module]] = []
    for i, c_out in enumerate(channels, start=1):
        blocks.append((f"conv{i}", _conv_block(c, c_out, 5, batch_norm)))
        c, h, w = c_out, h // 2, w // 2
    fc_layers: list[nn.Module] = [nn.Flatten(), nn.Linear(c * h * w, fc_width)]
    if batch_norm:
        fc_layers.append(nn.BatchNorm1d(fc_width))
    fc_layers.append(nn.ReLU())
    blocks.append(("fc1", nn.Sequential(*fc_layers)))
    blocks.append(("head", nn.Linear(fc_width, n_classes)))
    return BlockNet(blocks, arch="lenet")


def cifar_cnn(input_shape: Sequence[int], n_classes: int, channels: Sequence[int] = (32, 64, 128),
              fc_width: int = 256) -> BlockNet:
    """A small VGG-like CNN for 32x32 colour images (3 conv blocks with batch norm, fc, head)."""
    c, h, w = input_shape
    blocks: list[tuple[str, nn.Module]] = []
    for i, c_out in enumerate(channels, start=1):
        blocks.append((f"conv{i}", _conv_block(c, c_out, 3, batch_norm=True)))
        c, h, w = c_out, h // 2, w // 2
    blocks.append(("fc1", _flatten_linear(c * h * w, fc_width)))
    blocks.append(("head", nn.Linear(fc_width, n_classes)))
    return BlockNet(blocks, arch="cifar_cnn")


def build_model(name: str, input_shape: Sequence[int], n_classes: int,
                widths: Sequence[int] | None = None) -> BlockNet:
    """Construct a model by name (one of :data:`MODEL_NAMES`).

    ``widths`` overrides the hidden widths of the MLPs (ignored by the CNNs).
    """
    if name == "mlp":
        return mlp(input_shape, n_classes, widths or (256, 256))
    if name == "tabular_mlp":
        return tabular_mlp(input_shape, n_classes, widths or (64, 64))
    if name == "lenet":
        return lenet(input_shape, n_classes)
    if name == "cifar_cnn":
        return cifar_cnn(input_shape, n_classes)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def masked_logits(logits: torch.Tensor, classes: Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    """Set the logits outside ``classes`` to ``-inf`` (multi-head losses); ``None`` -> unchanged.

    ``classes``: a sequence of class ids, or a boolean mask broadcastable to ``logits``
    ``(B, C)``, e.g. ``(C,)`` or per-sample ``(B, C)``.

    >>> masked_logits(torch.zeros(1, 4), (1, 2)).tolist()
    [[-inf, 0.0, 0.0, -inf]]
    """
    if classes is None:
        return logits
    return logits.masked_fill(~class_mask(classes, logits), float("-inf"))


def class_mask(classes: Sequence[int] | torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``classes`` as a boolean mask broadcastable to ``logits`` ``(..., C)``."""
    if isinstance(classes, torch.Tensor):
        return classes.to(device=logits.device, dtype=torch.bool)
    keep = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    keep[list(classes)] = True
    return keep


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module) -> Iterator[None]:
    """Within the block, batch-norm layers in train mode use batch statistics but do not
    update their running statistics (momentum 0), so an extra measuring forward pass does not
    change the model."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum



def group_batch_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(parameter group, batch-norm layer)`` for every batch-norm layer inside a block of a
    :class:`BlockNet` (empty for other models).

    >>> [(g, type(m).__name__) for g, m in group_batch_norms(lenet((1, 28, 28), 10))]
    [('conv1', 'BatchNorm2d'), ('conv2', 'BatchNorm2d'), ('fc1', 'BatchNorm1d')]
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleDict):
        return []
    return [(name, m) for name, block in blocks.items() for m in block.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` fails clearly when absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch.cuda.is_available() is False")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    return torch.device(device)
