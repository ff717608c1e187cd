"""check-reproduction's comparison (paperlib.repro.reprocheck) fails over its tolerance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from paperlib.repro import reprocheck


def _write(folder: Path, acc: list[float], seconds: list[float], methods=("a", "b")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"dataset": "mnist", "scenario": "class_incremental", "method": list(methods),
                  "n_seeds": 3, "final_avg_accuracy_mean": acc,
                  "retrain_seconds_mean": seconds, "code_hash": "x", "lossy_data": False,
                  }).to_csv(folder / "t_results.csv", index=False)
    return folder


def test_identical_tables_pass_and_seconds_are_ignored(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    ref = _write(tmp_path / "ref", [0.9, 0.8], [1.0, 2.0])
    new = _write(tmp_path / "new", [0.9, 0.8], [5.0, 9.0])
    assert reprocheck.main(["--fresh", str(new), "--reference", str(ref)]) == 0
    assert "1 of 1 tables within tolerance 0" in capsys.readouterr().out


@pytest.mark.parametrize(("tolerance", "rc"), [(0.0, 1), (0.005, 1), (0.02, 0)])
def test_deviation_over_tolerance_fails(tmp_path: Path, tolerance: float, rc: int,
                                        capsys: pytest.CaptureFixture) -> None:
    ref = _write(tmp_path / "ref", [0.9, 0.8], [1.0, 2.0])
    new = _write(tmp_path / "new", [0.9, 0.81], [1.0, 2.0])
    assert reprocheck.main(["--fresh", str(new), "--reference", str(ref),
                            "--tolerance", str(tolerance)]) == rc
    out = capsys.readouterr().out
    assert "0.01" in out and "method=b: final_avg_accuracy_mean" in out


def test_missing_rows_fail(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref", [0.9, 0.8], [1.0, 2.0])
    new = _write(tmp_path / "new", [0.9, 0.8], [1.0, 2.0], methods=("a", "c"))
    assert reprocheck.main(["--fresh", str(new), "--reference", str(ref),
                            "--tolerance", "1"]) == 1


def test_reference_from_git() -> None:
    ref = reprocheck.read_reference("01_data_incremental_results.csv", "HEAD:figures/tables")
    assert ref is not None and "final_avg_accuracy_mean" in ref
    assert reprocheck.compare_tables(ref, ref).deviation == 0.0


def test_round_keyed_tables(tmp_path: Path) -> None:
    """Per-round tables (06 bandit arms) are matched on method, arm and round."""
    ref = pd.DataFrame({"method": "bandit", "round": [1, 1, 2], "arm": ["new", "old", "new"],
                        "n_seeds": 2, "pulls_mean": [3.0, 4.0, 5.0]})
    new = ref.sample(frac=1.0, random_state=0).assign(pulls_mean=lambda d: d["pulls_mean"] + 0.5)
    d = reprocheck.compare_tables(ref, new)
    assert d.deviation == 0.5 and not d.problems
