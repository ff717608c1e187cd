"""Display names and provenance footnotes shared by figures (:mod:`paperlib.repro.plots`) and tables
(:mod:`paperlib.repro.report`): dataset and scenario labels, and the one-line note saying which
profile, data source and how many seeds a figure or table comes from.

>>> DATASET_LABELS["fashion_mnist"], SCENARIO_LABELS["rotated"]
('Fashion-MNIST', 'rotated domains')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

DATASET_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                  "elec2": "Elec2", "weather": "Weather", "digits": "digits"}
SCENARIO_LABELS = {"data_incremental": "data-incremental", "class_incremental": "class-incremental",
                   "rotated": "rotated domains", "permuted": "permuted domains",
                   "stream": "stream", "split_task": "split tasks",
                   "split_class": "split classes"}

def data_note(summaries: pd.DataFrame) -> str:
    """'MNIST (offline mirror)', 'CIFAR-10 from a lossy JPEG copy', ... for the footnote."""
    notes = []
    cols = [c for c in ("dataset", "data_source", "lossy_data") if c in summaries]
    for _, row in summaries[cols].drop_duplicates().iterrows():
        name = DATASET_LABELS.get(row["dataset"], row["dataset"])
        if bool(row.get("lossy_data", False)):
            notes.append(f"{name} from a lossy JPEG copy" if row["dataset"] == "cifar10"
                         else f"{name} from a lossy copy")
        elif row.get("data_source") == "bundled":
            notes.append(f"{name} (bundled with scikit-learn)")
        elif row.get("data_source") == "mirror":
            notes.append(f"{name} (offline mirror, checksummed)")
        else:
            notes.append(name)
        source = str(row.get("data_source", ""))
        if "subset" in source:  # e.g. the CIFAR-10 subset of the GPU bundle (paperlib.repro.bundle)
            notes[-1] += f" ({source[source.index('subset'):]})"
    return ", ".join(dict.fromkeys(notes))


def footnote_text(summaries: pd.DataFrame | None = None,
                  params: Mapping[str, Any] | None = None) -> str:
    """``profile quick · CIFAR-10 from a lossy JPEG copy · 3 seeds, mean ± sd``."""
    parts = []
    if summaries is not None and len(summaries):
        profiles = ", ".join(dict.fromkeys(summaries["profile"].astype(str)))
        parts.append(f"profile {profiles}")
        parts.append(data_note(summaries))
        n = summaries["seed"].nunique()
        parts.append(f"{n} seed{'s' if n != 1 else ''}" + (", mean ± sd" if n > 1 else ""))
    elif params:
        parts.append(f"profile {params.get('profile', '?')}")
    return " · ".join(p for p in parts if p)
