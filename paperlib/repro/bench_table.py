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


def mean_sd_text(values: list[float], pct: bool = False, signed: bool = False) -> str:
    """``mean ± sd`` of ``values`` (sd NaN for one value), as a percentage or to 4 decimals.

    >>> mean_sd_text([0.2, 0.3], pct=True), mean_sd_text([0.01, 0.03], signed=True)
    ('25.0% ± 7.1%', '+0.0200 ± 0.0141')
    """
    import statistics

    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    if pct:
        return f"{mean:.1%} ± {sd:.1%}"
    return f"{mean:+.4f} ± {sd:.4f}" if signed else f"{mean:.4f} ± {sd:.4f}"
