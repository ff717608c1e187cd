"""Plain-text and Markdown tables of benchmark rows, shared by :mod:`paperlib.repro.bench` and
:mod:`paperlib.repro.bench_rivals` (below both, so neither imports the other for them)."""

from __future__ import annotations

from typing import Any


def _print_table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(widths[c]) for c in cols))


def _markdown(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3e}" if abs(v) >= 1e5 else f"{v:.4f}"
    return str(v)
