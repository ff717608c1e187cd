"""Claims in prose, checked against the results tables.

A sentence of README.md that compares methods carries a machine-readable marker right next to
it, an HTML comment (invisible on GitHub)::

    <!-- claim: final_avg_accuracy mnist/class_incremental replay > bandit -->

``python -m paperlib.repro.report --check-claims README.md`` (run by ``make test`` through
``tests/test_claims.py``) evaluates every marker against the committed tables and fails when
one is false, so prose cannot silently contradict the numbers after a rerun.

Grammar (one claim per marker; whitespace-separated)::

    claim: [in TABLE] METRIC[.sd] DATASET/SCENARIO A OP B

- ``TABLE``: a csv under the figures folder, without ``.csv``; default ``tables/results`` (the
  README table). E.g. ``in paper/tables/results`` for the paper-profile table, or
  ``in tables/05_ablations_results``.
- ``METRIC``: a column stem of the table (``final_avg_accuracy``, ``prequential_accuracy``,
  ``retrain_seconds``, ``final_acc/old`` ...); the claim compares ``METRIC_mean``, or
  ``METRIC_std`` with the ``.sd`` suffix (stability claims).
- ``A``: a method (its row in the table for ``DATASET/SCENARIO``); ``B``: a method or a number.
- ``OP``:

  ===================== ===================================================================
  ``A > B``, ``A < B``  the means are ordered so
  ``A >> B``, ``A << B`` ordered, by more than the spread (sd of A + sd of B; sd = 0 for
                        one seed or a number)
  ``A ~ B`` (or ``≈``)  equal within the spread: ``|A - B| <= sd(A) + sd(B)``
  ``A within X B``      ``|A - B| <= X`` points, one point = 0.01 (a percentage point of an
                        accuracy); write ``within 2 points of B`` or ``within 2 B``
  ===================== ===================================================================

>>> c = parse_claim("final_avg_accuracy mnist/data_incremental replay > bandit")
>>> c.metric, c.dataset, c.scenario, c.a, c.op, c.b, c.table
('final_avg_accuracy', 'mnist', 'data_incremental', 'replay', '>', 'bandit', 'tables/results')
>>> parse_claim("in paper/tables/results final_avg_accuracy.sd elec2/stream bandit within 2 points of replay").points
2.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: A claim marker; one quoted in inline code (preceded by a backtick) is an example, not a claim.
MARKER = re.compile(r"(?<!`)<!--\s*claim:\s*(.*?)\s*-->", re.DOTALL)
OPS = (">", "<", ">>", "<<", "~", "within")
DEFAULT_TABLE = "tables/results"


class ClaimError(ValueError):
    """A claim marker cannot be parsed or refers to nothing in its table."""


@dataclass(frozen=True)
class Claim:
    """One parsed claim (see the module docstring for the grammar)."""

    text: str
    table: str
    metric: str
    stat: str  # "mean" or "std"
    dataset: str
    scenario: str
    a: str
    op: str
    b: str
    points: float | None = None
    line: int = 0


def parse_claim(text: str, line: int = 0) -> Claim:
    """Parse the body of one marker; :class:`ClaimError` names what is wrong."""
    tokens = text.replace("≈", "~").split()
    orig = " ".join(tokens)
    table = DEFAULT_TABLE
    if tokens[:1] == ["in"]:
        if len(tokens) < 2:
            raise ClaimError(f"line {line}: 'in' needs a table name: {orig!r}")
        table, tokens = tokens[1].removesuffix(".csv"), tokens[2:]
    if len(tokens) < 5:
        raise ClaimError(f"line {line}: expected 'METRIC DATASET/SCENARIO A OP B', got {orig!r}")
    metric, setting, a, op, *rest = tokens
    stat = "mean"
    if metric.endswith(".sd"):
        metric, stat = metric[:-3], "std"
    if setting.count("/") != 1:
        raise ClaimError(f"line {line}: setting must be DATASET/SCENARIO, got {setting!r}")
    dataset, scenario = setting.split("/")
    points = None
    if op == "within":
        # within X B | within X points of B | within X point of B
        if not rest:
            raise ClaimError(f"line {line}: 'within' needs a number of points: {orig!r}")
        try:
            points = float(rest[0])
        except ValueError:
            raise ClaimError(f"line {line}: 'within' needs a number, got {rest[0]!r}") from None
        rest = [t for t in rest[1:] if t not in ("points", "point", "of")]
    if op not in OPS:
        raise ClaimError(f"line {line}: unknown comparison {op!r}; use one of {', '.join(OPS)}")
    if len(rest) != 1:
        raise ClaimError(f"line {line}: expected one right-hand side after {op!r}: {orig!r}")
    return Claim(orig, table, metric, stat, dataset, scenario, a, op, rest[0], points, line)


def find_claims(text: str) -> list[Claim]:
    """Every claim marker of a Markdown text, with its line number."""
    return [parse_claim(m.group(1), text.count("\n", 0, m.start()) + 1)
            for m in MARKER.finditer(text)]


def _value(table: pd.DataFrame, claim: Claim, method: str, stat: str) -> float:
    col = f"{claim.metric}_{stat}"
    if f"{claim.metric}_mean" not in table:
        stems = sorted(c[:-5] for c in table.columns if c.endswith("_mean"))
        raise ClaimError(f"line {claim.line}: table {claim.table} has no metric "
                         f"{claim.metric!r}; available: {', '.join(stems)}")
    rows = table[(table["dataset"] == claim.dataset) & (table["scenario"] == claim.scenario)
                 & (table["method"] == method)]
    if len(rows) != 1:
        raise ClaimError(f"line {claim.line}: table {claim.table} has {len(rows)} rows for "
                         f"{method} on {claim.dataset}/{claim.scenario} (need exactly one)")
    v = float(rows[col].iloc[0])
    return 0.0 if stat == "std" and math.isnan(v) else v


def _side(table: pd.DataFrame, claim: Claim, term: str) -> tuple[float, float]:
    """(value compared, its sd) of one side: a method's row, or a number with sd 0."""
    try:
        return float(term), 0.0
    except ValueError:
        pass
    v = _value(table, claim, term, claim.stat)
    sd = _value(table, claim, term, "std") if claim.stat == "mean" else 0.0
    return v, sd


def evaluate(claim: Claim, table: pd.DataFrame) -> tuple[bool, str]:
    """Whether ``claim`` holds in ``table``, and the numbers that decide it."""
    a, sa = _side(table, claim, claim.a)
    b, sb = _side(table, claim, claim.b)
    spread = sa + sb
    ok = {">": a > b, "<": a < b, ">>": a - b > spread, "<<": b - a > spread,
          "~": abs(a - b) <= spread + 1e-12,
          "within": claim.points is not None and abs(a - b) <= claim.points / 100 + 1e-12}[claim.op]
    what = f"{claim.metric}{'' if claim.stat == 'mean' else '.sd'}"
    detail = (f"{what} {claim.dataset}/{claim.scenario}: {claim.a} = {a:.4f}"
              f"{f' ± {sa:.4f}' if claim.stat == 'mean' else ''}, {claim.b} = {b:.4f}"
              f"{f' ± {sb:.4f}' if claim.stat == 'mean' else ''}")
    if claim.op in (">>", "<<", "~"):
        detail += f", spread {spread:.4f}"
    return ok, detail


def check_claims(markdown: str | Path, figures_dir: str | Path) -> tuple[list[str], list[str]]:
    """Check every claim of a Markdown file against the tables under ``figures_dir``.

    Returns ``(passed, failed)``: one line per claim. A marker that cannot be parsed, or names
    a table, metric, setting or method that is not there, is a failure.
    """
    path = Path(markdown)
    text = path.read_text()
    passed: list[str] = []
    failed: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    for m in MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        try:
            claim = parse_claim(m.group(1), line)
            if claim.table not in tables:
                csv = Path(figures_dir) / f"{claim.table}.csv"
                if not csv.is_file():
                    raise ClaimError(f"line {line}: no table {csv}")
                tables[claim.table] = pd.read_csv(csv)
            ok, detail = evaluate(claim, tables[claim.table])
        except ClaimError as exc:
            failed.append(f"{path.name}:{line}: ERROR {m.group(1).strip()!r}: {exc}")
            continue
        entry = f"{path.name}:{line}: {'ok' if ok else 'FALSE'} [{claim.text}] {detail}"
        (passed if ok else failed).append(entry)
    return passed, failed
