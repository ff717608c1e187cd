"""The numeric policy of every run on CUDA: seeded, TF32 off, deterministic cuDNN.

- **Seeded.** Every random choice is seeded by the run's configuration (``torch.manual_seed``
  and explicit generators in the runner and the sample sources), so a run is repeatable on the
  same device, software and thread count. CUDA and CPU results are not bitwise equal.
- **TF32 off.** Matrix products and convolutions run in full float32 on Ampere and newer GPUs
  (PyTorch's TF32 default differs between matmul and cuDNN and across versions; we set both
  explicitly), so GPU numbers are comparable with the CPU ones and do not depend on the GPU
  generation.
- **Deterministic cuDNN.** ``cudnn.deterministic = True`` and ``cudnn.benchmark = False``:
  convolution algorithms are fixed rather than autotuned per process.

:func:`configure` is called by the runner before each simulation (and by every pool worker).

>>> configure("cpu")["tf32"]
False
"""

from __future__ import annotations

from typing import Any

import torch

#: The policy, recorded with the GPU check's manifest.
POLICY: dict[str, Any] = {"seeded": True, "tf32": False, "cudnn_deterministic": True,
                          "cudnn_benchmark": False}


def configure(device: str | torch.device = "auto") -> dict[str, Any]:
    """Apply :data:`POLICY` to PyTorch's CUDA backends (harmless without a GPU) and return it."""
    torch.backends.cuda.matmul.allow_tf32 = POLICY["tf32"]
    torch.backends.cudnn.allow_tf32 = POLICY["tf32"]
    torch.backends.cudnn.deterministic = POLICY["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = POLICY["cudnn_benchmark"]
    return dict(POLICY)
