"""The notebooks and their helpers: sources are clean and generated, every notebook executes
through the strict wrapper with tiny parameters, mistyped parameters fail loudly, and the
plot / report / manifest helpers work on small real runs."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest
from matplotlib.figure import Figure

from paperlib.repro import experiments, plots, report
from paperlib.repro.nbclean import output_problems, volatile_metadata
from paperlib.repro.notebooks import execute, notebook_parameters
from paperlib.repro.notebooks import main as notebooks_main
from paperlib.spec import ConfigError

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
COMMON = {"profile", "device", "seeds", "methods", "figures_dir", "overrides"}
DIGITS = {"dataset": "digits"}

# notebook stem -> (methods to run, extra parameters, figure names expected)
CASES = {
    "01_data_incremental": (["finetune", "bandit"], {}, ["01_data_incremental_accuracy",
                                                         "01_data_incremental_cost"]),
    "02_class_incremental": (["finetune", "replay"], {},
                             [f"02_class_incremental_digits_{k}"
                              for k in ("accuracy", "forgetting", "cost")]),
    "03_domain_drift": (["finetune", "ewc"], {}, ["03_domain_drift_accuracy",
                                                  "03_domain_drift_cost"]),
    "05_ablations": (["bandit", "bandit_weights_only"], {},
                     [f"05_ablations_{k}" for k in ("accuracy", "final_accuracy", "pareto")]),
    "06_bandit_dynamics": (["bandit", "random_weights"], {}, ["06_bandit_dynamics_arms",
                                                              "06_bandit_dynamics_weight_groups"]),
    "07_cost_vs_accuracy": (["finetune", "bandit"], {"budget_methods": "finetune,replay"},
                            ["07_cost_vs_accuracy_flops", "07_cost_vs_accuracy_seconds",
                             "07_cost_vs_accuracy_budget_curves"]),
}


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One results store for the module (07 reuses the runs of 01), never the repo's."""
    return tmp_path_factory.mktemp("results")


def _env(results: Path) -> dict[str, str]:
    return {"PAPERLIB_RESULTS": str(results)}


# --------------------------------------------------------------------------- sources


def test_sources_have_no_outputs() -> None:
    assert len(NOTEBOOKS) == 7
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert nb.cells[0].cell_type == "markdown", path.name
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, path.name


def test_sources_match_generator() -> None:
    proc = subprocess.run([sys.executable, str(NB_DIR / "_build.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_common_parameters(path: Path) -> None:
    assert COMMON <= set(notebook_parameters(path))


# --------------------------------------------------------------------------- strict parameters


def test_mistyped_parameter_fails_before_running(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'profle' \(did you mean 'profile'\?\).*"
                                          r"Valid parameters: profile, device"):
        execute(NOTEBOOKS[0], tmp_path / "out.ipynb", {"profle": "smoke"})
    assert not list(tmp_path.iterdir())  # nothing executed, nothing written


def test_cli_reports_mistyped_parameter(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = notebooks_main([str(NOTEBOOKS[0]), str(tmp_path / "o.ipynb"), "-p", "seedz", "0"])
    assert rc == 2
    assert "did you mean 'seeds'" in capsys.readouterr().err


def test_mistyped_override_key_fails_with_engine_error(tmp_path: Path, results_dir: Path) -> None:
    out = tmp_path / "out.ipynb"
    with pytest.raises(ConfigError, match=r"unknown parameter 'epoch' \(did you mean 'epochs'\?\)"):
        execute(NOTEBOOKS[0], out, {"profile": "smoke", "seeds": [0], "methods": "finetune",
                                    "figures_dir": str(tmp_path / "fig"),
                                    "overrides": {**DIGITS, "epoch": 1}}, env=_env(results_dir))
    assert not out.exists() and (tmp_path / "out.failed.ipynb").exists()


# --------------------------------------------------------------------------- execution


def _check_outputs(figures: Path, names: list[str], notebook: str, out: Path) -> None:
    assert out.exists()
    for name in names:
        for ext in ("pdf", "png"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    manifest = report.read_manifest(figures)
    for name in names:
        entry = manifest["figures"][name]
        assert entry["notebook"] == notebook and entry["git_revision"] and entry["runs"]
    assert any(figures.glob("tables/*.md")) and any(figures.glob("tables/*.csv"))
    executed = nbformat.read(out, as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    # what a reader sees is clean: no stderr, warning, absolute path, stray value, timings
    assert output_problems(executed) == [] and volatile_metadata(executed) == []


@pytest.mark.parametrize("stem", list(CASES))
def test_notebook_executes(stem: str, tmp_path: Path, results_dir: Path) -> None:
    methods, extra, names = CASES[stem]
    figures = tmp_path / "figures"
    out = tmp_path / "executed" / f"{stem}.ipynb"
    params = {"profile": "smoke", "seeds": [0], "methods": ",".join(methods),
              "figures_dir": str(figures), "overrides": json.dumps(DIGITS), **extra}
    execute(NB_DIR / f"{stem}.ipynb", out, params, env=_env(results_dir))
    _check_outputs(figures, names, stem, out)


def test_streams_notebook_executes(tmp_path: Path, results_dir: Path, need_mirror) -> None:
    mirror = need_mirror("elec2/elec.csv")
    figures = tmp_path / "figures"
    out = tmp_path / "executed" / "04.ipynb"
    params = {"profile": "smoke", "dataset": "elec2", "seeds": "0", "methods": "finetune,bandit",
              "figures_dir": str(figures)}
    execute(NB_DIR / "04_real_streams.ipynb", out, params,
            env={**_env(results_dir), "PAPERLIB_DATA_MIRROR": str(mirror)})
    _check_outputs(figures, [f"04_real_streams_elec2_{k}" for k in ("prequential", "cost", "flips")],
                   "04_real_streams", out)


# --------------------------------------------------------------------------- helpers on real runs


@pytest.fixture(scope="module")
def grid(results_dir: Path) -> experiments.GridResult:
    """Class-incremental digits, smoke profile, two methods x two seeds (stored)."""
    return experiments.run_grid({"dataset": "digits", "scenario": "class_incremental",
                                 "profile": "smoke"}, ["finetune", "bandit"], [0, 1],
                                progress=False, results=results_dir)


def test_grid_tables(grid: experiments.GridResult) -> None:
    s = grid.summaries
    assert len(s) == 4 and {"final_acc/old", "final_acc/new", "run_seconds"} <= set(s.columns)
    assert set(grid.rounds["method"]) == {"finetune", "bandit"}
    assert len(grid.rounds) == 4 * 3  # round 0 + two new-class shards (smoke)
    for name in ("sample_arms", "sample_trace", "weight_groups"):
        t = grid.tables[name]
        assert set(t["method"]) == {"bandit"} and set(t["seed"]) == {0, 1}
        assert "dataset" in t.columns
    again = experiments.run_grid({"dataset": "digits", "scenario": "class_incremental",
                                  "profile": "smoke"}, ["finetune"], [0], progress=False,
                                 results=Path(s["run_dir"][0]).parent)
    assert bool(again.summaries["cached"][0])


def test_parameter_helpers() -> None:
    assert experiments.parse_list("a, b") == ["a", "b"]
    assert experiments.parse_list("[0, 1]", int) == [0, 1]
    assert experiments.parse_list(["x"]) == ["x"]
    assert experiments.resolve_seeds(None, "quick") == [0, 1, 2]
    assert experiments.resolve_seeds("2", "paper") == [2]
    assert experiments.parse_overrides('{"epochs": 1}') == {"epochs": 1}
    assert experiments.parse_overrides(None) == {}
    with pytest.raises(ConfigError, match="JSON"):
        experiments.parse_overrides("{epochs: 1}")
    with pytest.raises(ConfigError, match="did you mean 'bandit'"):
        experiments.resolve_methods("bandt", experiments.MAIN_METHODS)
    with pytest.raises(ConfigError, match="seeds"):
        experiments.setup_notebook("x", base={}, default_methods=["finetune"],
                                   overrides={"seed": 1})
    with pytest.raises(ConfigError, match="Valid parameters: a, b"):
        experiments.validate_notebook_params({"c": 1}, {"a", "b"})
    assert set(experiments.ABLATION_METHODS) - set(experiments.MAIN_METHODS) == {
        "bandit_samples_only", "bandit_weights_only", "bandit_no_reg", "bandit_all_weights",
        "importance_reg_only",
        "random_samples", "random_weights"}


def test_every_plot(grid: experiments.GridResult) -> None:
    figs = [plots.accuracy_per_round(grid.rounds), plots.class_incremental_accuracy(grid.rounds),
            plots.cumulative_cost(grid.rounds), plots.negative_flip_rate(grid.rounds),
            plots.prequential_accuracy(grid.rounds), plots.forgetting_bars(grid.summaries),
            plots.arm_probabilities(grid.sample_trace), plots.weight_group_map(grid.weight_groups),
            plots.pareto(grid.summaries), plots.pareto(grid.summaries, cost="retrain_seconds")]
    try:
        assert all(isinstance(f, Figure) for f in figs)
        cost = figs[2].axes
        assert cost[0].get_ylabel() == "retraining time (s)"
        assert cost[1].get_ylabel() == "training FLOPs"
    finally:
        for f in figs:
            plt.close(f)


def test_method_styles_are_distinct() -> None:
    styles = plots.method_styles()
    assert len({s["marker"] for s in styles.values()}) == len(styles)
    assert len({str(s["dashes"]) for s in styles.values()}) == len(styles)
    for group in (experiments.MAIN_METHODS, experiments.ABLATION_METHODS,
                  experiments.MAIN_METHODS + experiments.RIVAL_METHODS):
        assert len({styles[m]["color"] for m in group}) == len(group)
    assert plots.method_styles(["bandit"])["bandit"] == styles["bandit"]


def test_save_figure_is_byte_stable_and_recorded(grid: experiments.GridResult,
                                                 tmp_path: Path) -> None:
    params = {"profile": "smoke"}
    digests = []
    for _ in range(2):
        fig = plots.accuracy_per_round(grid.rounds)
        paths = plots.save_figure(fig, "acc", caption="c", figures_dir=tmp_path,
                                  notebook="test", params=params, grid=grid, wall_seconds=1.0)
        plt.close(fig)
        digests.append([p.read_bytes() for p in paths])
    assert digests[0] == digests[1]
    assert b"CreationDate" not in digests[0][0]
    entry = report.read_manifest(tmp_path)["figures"]["acc"]
    assert set(entry["files"]) == {"acc.pdf", "acc.png"}
    assert len(entry["runs"]) == 4 and entry["run_seconds_total"] > 0
    assert entry["data"]["digits"]["source"] == "bundled" and entry["device"]
    assert entry["footnote"] == "profile smoke · digits (bundled with scikit-learn) · 2 seeds, mean ± sd"
    assert entry["notebook_wall_seconds"] == 1.0


def test_footnote_says_lossy_cifar() -> None:
    s = pd.DataFrame({"dataset": "cifar10", "data_source": "mirror", "lossy_data": True,
                      "profile": "quick", "seed": [0, 1, 2]})
    assert plots.footnote_text(s) == ("profile quick · CIFAR-10 from a lossy JPEG copy · "
                                      "3 seeds, mean ± sd")


def test_tables_and_readme(grid: experiments.GridResult, tmp_path: Path) -> None:
    table = report.summary_table(grid.summaries)
    ft = grid.summaries[grid.summaries["method"] == "finetune"]["final_avg_accuracy"]
    row = table[table["method"] == "finetune"].iloc[0]
    assert row["n_seeds"] == 2 and row["final_avg_accuracy_mean"] == pytest.approx(ft.mean())
    assert list(table["method"]) == ["finetune", "bandit"]  # METHODS order
    csv, md = report.write_table(table, "t", caption="cap", figures_dir=tmp_path, notebook="test",
                                 params={"profile": "smoke"}, grid=grid)
    assert pd.read_csv(csv).shape[0] == 2 and "±" in md.read_text()
    assert report.read_manifest(tmp_path)["tables"]["t"]["files"].keys() == {"tables/t.csv",
                                                                            "tables/t.md"}
    readme = report.make_readme_table(table)
    assert "| finetune |" in readme and "digits class-incremental" in readme
    arms = report.bandit_arm_table(grid.sample_arms)
    assert {"probability_mean", "pulls_mean"} <= set(arms.columns)


def test_report_cli_rebuilds_from_manifest(grid: experiments.GridResult, tmp_path: Path,
                                           results_dir: Path) -> None:
    fig = plots.cumulative_cost(grid.rounds)
    plots.save_figure(fig, "cost", caption="c", figures_dir=tmp_path, notebook="nb",
                      params={"profile": "smoke"}, grid=grid)
    plt.close(fig)
    assert report.main(["--profile", "smoke", "--figures-dir", str(tmp_path),
                        "--results", str(results_dir)]) == 0
    table = pd.read_csv(tmp_path / "tables" / "results.csv")
    assert sorted(table["method"]) == ["bandit", "finetune"]
    assert "±" in (tmp_path / "tables" / "README_results.md").read_text()
    assert report.main(["--profile", "paper", "--figures-dir", str(tmp_path),
                        "--results", str(results_dir)]) == 1


def test_report_table_holds_only_runs_at_the_defaults(grid: experiments.GridResult,
                                                       tmp_path: Path, results_dir: Path) -> None:
    """A budget sweep's runs (07) share dataset, scenario, method and seeds with the default
    runs; the results table must not average them in (it once did, silently)."""
    swept = experiments.run_grid({"dataset": "digits", "scenario": "class_incremental",
                                  "profile": "smoke", "budget": 0.5}, ["finetune"], [0, 1],
                                 progress=False, results=results_dir)
    for name, g in (("default", grid), ("swept", swept)):
        fig = plots.cumulative_cost(g.rounds)
        plots.save_figure(fig, name, caption="c", figures_dir=tmp_path, notebook="nb",
                          params={"profile": "smoke"}, grid=g)
        plt.close(fig)
    assert report.main(["--profile", "smoke", "--figures-dir", str(tmp_path),
                        "--results", str(results_dir)]) == 0
    table = pd.read_csv(tmp_path / "tables" / "results.csv").set_index("method")
    default = grid.summaries[grid.summaries["method"] == "finetune"]["final_avg_accuracy"]
    both = pd.concat([default, swept.summaries["final_avg_accuracy"]])
    assert abs(both.mean() - default.mean()) > 1e-4  # so averaging them in would show
    assert table.loc["finetune", "final_avg_accuracy_mean"] == pytest.approx(default.mean(),
                                                                             abs=1e-6)
    assert table.loc["finetune", "n_seeds"] == 2
    assert set(report.collect_summaries(
        [Path(d) for d in swept.summaries["results_path"]])["variant"]) == {"budget=0.5"}


def _write_entry(args: tuple[str, int]) -> None:
    folder, i = args
    report.update_manifest(folder, "figures", f"fig{i}", {"i": i})


def test_manifest_merges_parallel_writers(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        pool.map(_write_entry, [(str(tmp_path), i) for i in range(24)])
    figures = report.read_manifest(tmp_path)["figures"]
    assert sorted(figures) == sorted(f"fig{i}" for i in range(24))
    assert [p.name for p in tmp_path.iterdir()] == ["MANIFEST.json"]  # no temp/lock files left
