"""The executed notebooks committed under ``notebooks/executed/`` open rendered and clean: no
stderr stream, no warning, no absolute path, no stray return value, no volatile metadata, their
code is that of the current sources, and together they stay small. The cleaning functions
themselves are checked on synthetic notebooks (a smoke run through the wrapper is checked in
``test_notebooks.py``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from paperlib.repro.nbclean import clean_notebook, output_problems, volatile_metadata

REPO = Path(__file__).resolve().parents[1]
EXECUTED = REPO / "notebooks" / "executed"
COMMITTED_PROFILE = "quick"
MAX_TOTAL_BYTES = 5_000_000  # "a few MB" for all of them together


def committed_notebooks() -> list[Path]:
    """Executed notebooks tracked by git (every one under ``notebooks/executed`` when this is
    not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "notebooks/executed"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
        paths = [REPO / p for p in out.split("\0") if p.endswith(".ipynb")]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in EXECUTED.glob("*/*.ipynb")
                 if not p.name.startswith(".") and ".failed" not in p.name]
    return sorted(p for p in paths if p.exists())


COMMITTED = committed_notebooks()


def reproduced_notebooks() -> list[str]:
    """Names of the executed notebooks ``make reproduce`` writes (from reproduce.mk)."""
    text = (REPO / "reproduce.mk").read_text()
    block = re.search(r"^REPRO_NOTEBOOKS := (.*?)\n\S", text, re.S | re.M)
    assert block, "REPRO_NOTEBOOKS not found in reproduce.mk"
    return block.group(1).replace("\\", " ").split()


def source_of(executed: Path) -> Path:
    """``02_class_incremental_cifar10.ipynb`` -> ``notebooks/02_class_incremental.ipynb``."""
    sources = {p.stem: p for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    stem = executed.stem
    while stem not in sources and "_" in stem:
        stem = stem.rsplit("_", 1)[0]
    return sources[stem]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert output_problems(nb) == []
    assert volatile_metadata(nb) == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every cell executed"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), "figures"
    assert any("text/html" in o.get("data", {}) for c in code for o in c.outputs), "a table"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_notebook_runs_the_current_sources(path: Path) -> None:
    executed = nbformat.read(path, as_version=4)
    source = nbformat.read(source_of(path), as_version=4)
    ran = [c.source for c in executed.cells
           if "injected-parameters" not in c.metadata.get("tags", [])]
    assert ran == [c.source for c in source.cells], \
        f"{path.name} is stale: rerun `make reproduce PROFILE={path.parent.name}`"


def test_committed_profile_is_complete_and_small() -> None:
    quick = [p for p in COMMITTED if p.parent.name == COMMITTED_PROFILE]
    if not quick:
        pytest.skip("no executed notebooks committed yet: run `make -j2 reproduce PROFILE=quick` "
                    f"and commit notebooks/executed/{COMMITTED_PROFILE}/")
    assert sorted(p.stem for p in quick) == sorted(reproduced_notebooks())
    total = sum(p.stat().st_size for p in COMMITTED)
    assert total <= MAX_TOTAL_BYTES, f"executed notebooks take {total / 1e6:.1f} MB"


def test_reproduce_mk_lists_the_notebooks() -> None:
    names = reproduced_notebooks()
    assert "01_data_incremental" in names and "07_cost_vs_accuracy" in names
    assert all(source_of(Path(f"{n}.ipynb")).exists() for n in names)


# --------------------------------------------------------------------------- the cleaning


def _dirty() -> nbformat.NotebookNode:
    params = new_code_cell("profile = 'quick'", metadata={"tags": ["injected-parameters"]})
    params["id"] = "3f2a9c1e"
    cell = new_code_cell("run()", metadata={
        "execution": {"iopub.status.busy": "2026-11-30T01:00:00Z"},
        "papermill": {"duration": 1.5, "status": "completed"}, "tags": []})
    cell.execution_count = 2
    nb = new_notebook(cells=[params, cell], metadata={
        "language_info": {"name": "python", "version": "3.11.7"},
        "papermill": {"duration": 3.2, "start_time": "2026-11-30", "parameters": {"profile": "quick"},
                      "output_path": "/tmp/x/.out.tmp-1.ipynb"}})
    return nb


def test_clean_notebook_strips_volatile_metadata() -> None:
    nb = _dirty()
    assert len(volatile_metadata(nb)) == 7
    clean_notebook(nb)
    assert volatile_metadata(nb) == []
    assert nb.metadata["papermill"] == {"parameters": {"profile": "quick"}}
    assert nb.metadata["language_info"] == {"name": "python"}
    assert nb.cells[0]["id"] == "injected-parameters" and nb.cells[1].metadata == {"tags": []}
    assert nb.cells[1].execution_count == 2
    nbformat.validate(nb)


@pytest.mark.parametrize("output, kind", [
    (new_output("stream", name="stderr", text="runs: 50%|###  | 1/2\n"), "stderr stream"),
    (new_output("stream", name="stdout", text="x.py:3: FutureWarning: deprecated\n"), "warning"),
    (new_output("stream", name="stdout", text="figures /work/repo/figures\n"), "absolute path"),
    (new_output("stream", name="stdout", text="saved C:\\Users\\me\\fig.png\n"), "absolute path"),
    (new_output("execute_result", {"text/plain": "[PosixPath('fig.png')]"}), "stray return"),
    (new_output("execute_result", {"text/plain": "42"}), "stray return"),
    (new_output("error", ename="ValueError", evalue="bad", traceback=[]), "error"),
])
def test_output_problems_flags(output: nbformat.NotebookNode, kind: str) -> None:
    nb = new_notebook(cells=[new_code_cell("x", outputs=[output])])
    problems = output_problems(nb)
    assert problems and any(kind in p for p in problems), problems


@pytest.mark.parametrize("output", [
    new_output("stream", name="stdout", text="figures ../figures\nsee https://a.org/b/c\n"),
    new_output("stream", name="stdout", text="FLOPs / s: 1/2 of 2026/11/30\n"),
    new_output("execute_result", {"text/plain": "table", "text/html": "<table></table>"}),
    new_output("display_data", {"text/plain": "<Figure size 640x480 with 1 Axes>",
                                "image/png": "iVBORw0KGgo="}),
])
def test_output_problems_passes_clean_outputs(output: nbformat.NotebookNode) -> None:
    assert output_problems(new_notebook(cells=[new_code_cell("x", outputs=[output])])) == []


def test_wrapper_reports_what_a_reader_should_not_see(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import paperlib.repro.notebooks as wrapper

    def fake_execute(notebook: Path, output: Path, parameters: dict, **kw: object) -> Path:
        out = new_output("stream", name="stderr", text="TqdmWarning: IProgress not found\n")
        nbformat.write(new_notebook(cells=[new_code_cell("x", outputs=[out])]), output)
        return output

    monkeypatch.setattr(wrapper, "execute", fake_execute)
    source = REPO / "notebooks" / "06_bandit_dynamics.ipynb"
    assert wrapper.main([str(source), str(tmp_path / "o.ipynb")]) == 0
    err = capsys.readouterr().err
    assert "o.ipynb: cell 0: stderr stream: TqdmWarning" in err and "cell 0: warning" in err
