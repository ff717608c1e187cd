"""README claims are checked against the committed tables (paperlib.repro.claims)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from paperlib.repro import claims, report
from paperlib.serving.store import REPO_ROOT


def test_readme_claims_hold_against_committed_tables() -> None:
    passed, failed = claims.check_claims(REPO_ROOT / "README.md", REPO_ROOT / "figures")
    assert not failed, "README claims contradict the tables:\n" + "\n".join(failed)
    assert len(passed) >= 3  # the README does carry claims


def _table(tmp_path: Path) -> Path:
    figs = tmp_path / "figures"
    (figs / "tables").mkdir(parents=True)
    pd.DataFrame({
        "dataset": "mnist", "scenario": "class_incremental",
        "method": ["a", "b", "c"], "n_seeds": 3,
        "final_avg_accuracy_mean": [0.90, 0.85, 0.895],
        "final_avg_accuracy_std": [0.01, 0.02, 0.001],
    }).to_csv(figs / "tables" / "results.csv", index=False)
    return figs


@pytest.mark.parametrize(("claim", "holds"), [
    ("final_avg_accuracy mnist/class_incremental a > b", True),
    ("final_avg_accuracy mnist/class_incremental a < b", False),
    ("final_avg_accuracy mnist/class_incremental a >> b", True),    # 0.05 > 0.03
    ("final_avg_accuracy mnist/class_incremental a >> c", False),   # 0.005 < 0.011
    ("final_avg_accuracy mnist/class_incremental a ~ c", True),
    ("final_avg_accuracy mnist/class_incremental a ≈ b", False),
    ("final_avg_accuracy mnist/class_incremental a within 1 points of c", True),
    ("final_avg_accuracy mnist/class_incremental a within 4 b", False),
    ("final_avg_accuracy mnist/class_incremental b < 0.86", True),
    ("final_avg_accuracy.sd mnist/class_incremental b > a", True),
    ("final_avg_accuracy.sd mnist/class_incremental c > a", False),
])
def test_operators(tmp_path: Path, claim: str, holds: bool) -> None:
    figs = _table(tmp_path)
    md = tmp_path / "R.md"
    md.write_text(f"Some sentence. <!-- claim: {claim} -->\n")
    passed, failed = claims.check_claims(md, figs)
    assert (len(passed), len(failed)) == ((1, 0) if holds else (0, 1))


def test_false_claim_fails_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    figs = _table(tmp_path)
    md = tmp_path / "R.md"
    md.write_text("b beats a. <!-- claim: final_avg_accuracy mnist/class_incremental b > a -->\n"
                  "a beats b. <!-- claim: final_avg_accuracy mnist/class_incremental a > b -->\n")
    assert report.main(["--check-claims", str(md), "--figures-dir", str(figs)]) == 1
    out = capsys.readouterr().out
    assert "R.md:1: FALSE" in out and "R.md:2: ok" in out and "1 claims hold, 1 do not" in out


@pytest.mark.parametrize("bad", [
    "final_avg_accuracy mnist/class_incremental a >",                 # no right-hand side
    "final_avg_accuracy mnist a > b",                                 # no scenario
    "final_avg_accuracy mnist/class_incremental a => b",              # unknown operator
    "final_avg_acuracy mnist/class_incremental a > b",                # unknown metric
    "final_avg_accuracy mnist/data_incremental a > b",                # no such rows
    "in tables/nope final_avg_accuracy mnist/class_incremental a > b",  # no such table
])
def test_malformed_or_dangling_claims_fail(tmp_path: Path, bad: str) -> None:
    figs = _table(tmp_path)
    md = tmp_path / "R.md"
    md.write_text(f"<!-- claim: {bad} -->\n")
    passed, failed = claims.check_claims(md, figs)
    assert not passed and len(failed) == 1 and "ERROR" in failed[0]
