"""Generate the notebooks of this folder (without outputs) from the cell sources below.

    python notebooks/_build.py          # rewrite every notebook
    python notebooks/_build.py --check  # exit 1 when a committed notebook differs from its source

Each notebook is: a markdown cell (the experiment and which choices come from the paper, the
authors' earlier code or our reconstruction), a ``parameters`` cell (papermill), a setup cell that
validates the parameters, then a few glue cells calling :mod:`paperlib`. All logic lives in the
library; edit this file, not the ``.ipynb`` files, and rerun it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

COMMON_PARAMS = '''profile = "paper"        # smoke (tests) | quick (CPU, minutes) | paper (full settings)
device = "auto"          # auto | cpu | cuda
seeds = None             # None -> profile default (paper 0,1,2; quick 0,1,2; smoke 0); or "0,1,2"
methods = None           # None -> this notebook's default list; or "finetune,bandit"
{extra}figures_dir = "../figures"  # relative to notebooks/ (papermill --cwd notebooks)
overrides = None         # extra run parameters, a dict or JSON string, e.g. '{{"epochs": 1}}'
'''

SETUP = '''from paperlib.repro import experiments, plots, report

nb = experiments.setup_notebook(  # runs and default methods: paperlib.repro.grids
    "{name}", profile=profile, device=device, seeds=seeds, methods=methods, overrides=overrides,
    figures_dir=figures_dir{extra})
print(nb.describe())
'''

PROVENANCE = """
**Where the choices come from.** *Paper* (abstract only; the full text and code are not
available): retraining a served model on a stream of new data, bandit-selected samples and
weights, a synapse + neuron importance regulariser. *Authors' earlier code* (the sibling
"Frosting Weights" repository, see `NOTES.md`): the data-/class-incremental MNIST and CIFAR-10
protocols, the LeNet-with-batch-norm model, Adam lr 1e-4, batch 128, gradient clipping 5, and the
regulariser's form with λ_synapse = λ_neuron = 1e-3 and its squared-gradient importances
(computing those importances once per round from the served model, rather than on every
mini-batch, is ours). *Our reconstruction*: the bandits (Exp3.S over
data arms with a learning-progress reward, Exp3.M choosing half of the layer groups every 20 steps),
the step budget (2 × the new chunk's epochs), the epochs per round (paper profile 10 for the first
model, 5 per round, instead of up to 50 with early stopping), and the CPU-sized `quick` profile
(MLP, 12 000-sample subsets, lr 1e-3). Baselines follow their papers (EWC, online EWC, SI, MAS,
reservoir replay), and so do the rivals (MIR, GSS, DER, DER++, ER-ACE, LwF; their extra forward
and backward passes are counted in the FLOPs). Every hyper-parameter's source is listed by
`paperlib methods`.
"""

NOTEBOOKS: dict[str, dict] = {}


def _nb(name: str, title: str, intro: str, *, extra_params: str = "", extra_setup: str = "",
        cells: list[str]) -> None:
    NOTEBOOKS[name] = {"title": title, "intro": intro, "extra_params": extra_params,
                       "extra_setup": extra_setup, "cells": cells}


_nb("01_data_incremental", "Data-incremental MNIST: accuracy and retraining cost per round",
    """The served model keeps receiving new samples of the *same* ten classes. The MNIST training
set is split into 10 shards; the first served model trains on shards 1–5, then the model is
retrained as each of shards 6–10 arrives (protocol of the authors' earlier code). We compare the
paper's method (`bandit`) with fine-tuning on the new shard, full retraining (warm start and from
scratch), replay and the importance regularisers of the field, and with the rivals of its sample
bandit and regulariser (MIR, GSS, DER, DER++, ER-ACE, LwF; `experiments.scenario_methods` says
which ones each profile runs), on test accuracy after every round and on the cumulative cost of
retraining (wall-clock seconds and FLOPs).""",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.accuracy_per_round(grid.rounds, title=f"{nb.label}: test accuracy after each round")
nb.save_figure(fig, nb.name("accuracy"), grid=grid,
               caption=f"{nb.label}: test accuracy of the deployed model after each retraining round")''',
        '''fig = plots.cumulative_cost(grid.rounds, title=f"{nb.label}: cumulative retraining cost")
nb.save_figure(fig, nb.name("cost"), grid=grid,
               caption=f"{nb.label}: cumulative retraining time and training FLOPs")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name("results"), grid=grid, caption=f"{nb.label}: final results")
report.formatted_table(table)''',
    ])

_nb("02_class_incremental", "Class-incremental: old / new / overall accuracy and forgetting",
    """The first served model knows classes 0–4; the new classes 5–9 then arrive in shards, one
per round (protocol of the authors' earlier code, for MNIST and CIFAR-10; Fashion-MNIST is our
addition). Accuracy on the old-class and the new-class test sets is reported separately, with
their mean as the overall accuracy, and forgetting (best-ever minus final accuracy on the old
classes). Parameter `dataset`: `mnist`, `fashion_mnist` or `cifar10`. The CIFAR-10 files of the
offline mirror are a **lossy JPEG copy** (quality ~75); figures made from it say so in their
footnote.""",
    extra_params='dataset = "mnist"        # mnist | fashion_mnist | cifar10\n',
    extra_setup=", dataset=dataset",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.class_incremental_accuracy(grid.rounds, title=f"{nb.label}: accuracy per round")
nb.save_figure(fig, nb.name(nb.dataset, "accuracy"), grid=grid,
               caption=f"{nb.label}: old-class, new-class and overall test accuracy per round")''',
        '''fig = plots.forgetting_bars(grid.summaries, title=f"{nb.label}: forgetting")
nb.save_figure(fig, nb.name(nb.dataset, "forgetting"), grid=grid,
               caption=f"{nb.label}: forgetting of the old classes after the last round")
fig = plots.cumulative_cost(grid.rounds, title=f"{nb.label}: cumulative retraining cost")
nb.save_figure(fig, nb.name(nb.dataset, "cost"), grid=grid,
               caption=f"{nb.label}: cumulative retraining time and training FLOPs")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name(nb.dataset, "results"), grid=grid, caption=f"{nb.label}: final results")
report.formatted_table(table)''',
    ])

_nb("03_domain_drift", "Domain drift: rotated MNIST",
    """The input distribution drifts while the classes stay: the training set is split into five
disjoint parts, part *d* rotated by 30·*d* degrees (0°, 30°, …, 120°); the first model trains on
the unrotated part and each later part arrives as one round. This scenario is *our* addition
(the paper's abstract names no drift benchmark); it is the usual domain-incremental test of
forgetting. Accuracy is reported on the whole test set under every rotation.""",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.accuracy_per_round(grid.rounds, title=f"{nb.label}: accuracy per rotation")
nb.save_figure(fig, nb.name("accuracy"), grid=grid,
               caption=f"{nb.label}: test accuracy under each rotation, and their average, per round")''',
        '''fig = plots.cumulative_cost(grid.rounds, title=f"{nb.label}: cumulative retraining cost")
nb.save_figure(fig, nb.name("cost"), grid=grid,
               caption=f"{nb.label}: cumulative retraining time and training FLOPs")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name("results"), grid=grid, caption=f"{nb.label}: final results")
report.formatted_table(table)''',
    ])

_nb("04_real_streams", "Real streams: Elec2 and Weather, prequential accuracy and cost",
    """Two time-ordered concept-drift streams (scikit-multiflow's Elec2 and Weather; our choice of
real-data benchmarks). The stream is cut into consecutive chunks; the first chunks train the
first served model, then each chunk is first *predicted* by the served model (prequential,
test-then-train accuracy) and then used to retrain it. Features are standardised with past data
only. We report prequential accuracy over time, the retraining cost and the negative flip rate
(probe samples the previous model got right and the new one gets wrong). Parameter `dataset`:
`elec2` or `weather`.""",
    extra_params='dataset = "elec2"        # elec2 | weather\n',
    extra_setup=", dataset=dataset",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.prequential_accuracy(grid.rounds, title=f"{nb.label}: prequential accuracy")
nb.save_figure(fig, nb.name(nb.dataset, "prequential"), grid=grid,
               caption=f"{nb.label}: accuracy of the served model on each arriving chunk (test-then-train)")''',
        '''fig = plots.cumulative_cost(grid.rounds, title=f"{nb.label}: cumulative retraining cost")
nb.save_figure(fig, nb.name(nb.dataset, "cost"), grid=grid,
               caption=f"{nb.label}: cumulative retraining time and training FLOPs")
fig = plots.negative_flip_rate(grid.rounds, title=f"{nb.label}: negative flip rate")
nb.save_figure(fig, nb.name(nb.dataset, "flips"), grid=grid,
               caption=f"{nb.label}: negative flip rate of each deployment")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name(nb.dataset, "results"), grid=grid, caption=f"{nb.label}: final results")
report.formatted_table(table)''',
    ])

_nb("05_ablations", "Ablations of the paper's method on class-incremental MNIST",
    """The paper's method combines three components: a sample bandit, a weight bandit and the
synapse/neuron importance regulariser. Their exact design is unknown (our reconstruction), so
each is tested by switching it on or off: `bandit` (all three), `bandit_samples_only`,
`bandit_weights_only`, `importance_reg_only`, the sample bandit with one of the other two
(`bandit_no_reg`: both bandits; `bandit_all_weights`: sample bandit and regulariser), and the
full method with a *uniformly random*
choice in place of either bandit (`random_samples`, `random_weights`); `finetune` and
`full_retrain` are the two references. Class-incremental MNIST (classes 0–4, then 5–9).""",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.class_incremental_accuracy(grid.rounds, title=f"{nb.label}: ablations, accuracy per round")
nb.save_figure(fig, nb.name("accuracy"), grid=grid,
               caption=f"{nb.label}: each component of the paper's method on/off, accuracy per round")''',
        '''fig = plots.summary_bars(grid.summaries, "final_avg_accuracy", "final average accuracy",
                         title=f"{nb.label}: ablations, final accuracy")
nb.save_figure(fig, nb.name("final_accuracy"), grid=grid,
               caption=f"{nb.label}: final average accuracy of each ablation")
fig = plots.pareto(grid.summaries, cost="train_flops", title=f"{nb.label}: ablations, cost vs accuracy")
nb.save_figure(fig, nb.name("pareto"), grid=grid,
               caption=f"{nb.label}: training FLOPs vs final accuracy of each ablation")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name("results"), grid=grid, caption=f"{nb.label}: ablations")
report.formatted_table(table)''',
    ])

_nb("06_bandit_dynamics", "What the bandits choose: arm probabilities and trained layers",
    """Inside the paper's method on class-incremental MNIST. The *sample bandit* (Exp3.S, our
reconstruction) chooses, at every step, which data group a mini-batch comes from: the new chunk
or the data of an earlier round; we plot its arm probabilities over the gradient steps of all
rounds. The *weight bandit* (Exp3.M, our reconstruction) chooses which parameter groups (layers)
are trained; frozen groups get no gradient computation. The heatmap shows, per round, the share
of the bandit's decisions in which each group was trained.""",
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.arm_probabilities(grid.sample_trace, title=f"{nb.label}: sample-bandit arm probabilities")
nb.save_figure(fig, nb.name("arms"), grid=grid,
               caption=f"{nb.label}: probability of each data arm over the gradient steps of all rounds")''',
        '''fig = plots.weight_group_map(grid.weight_groups, title=f"{nb.label}: layers trained by the weight bandit")
nb.save_figure(fig, nb.name("weight_groups"), grid=grid,
               caption=f"{nb.label}: share of steps each parameter group was trained, per round")''',
        '''table = report.bandit_arm_table(grid.sample_arms)
nb.save_table(table, nb.name("arms"), grid=grid, caption=f"{nb.label}: data arms per round")
table''',
    ])

_nb("07_cost_vs_accuracy", "Cost vs accuracy: every method on a Pareto plot, and at equal budgets",
    """Every method as one point (mean over seeds, error bars = sd): retraining cost (training
FLOPs; wall-clock seconds in the second figure) against final average accuracy, for
data-incremental and class-incremental MNIST. The Pareto front marks the methods no other method
beats on both cost and accuracy. The runs are those of notebooks 01, 02 and 05 (cache hits in
`results/`); run those first or this notebook computes them.

Then **accuracy against compute**: every method of `experiments.BUDGET_METHODS` retrains under
the same per-round budget (the run parameter `budget`, in full-model training passes over the
new chunk: `budget × n_new × full-step FLOPs per sample`, every extra forward/backward pass and
every importance estimate charged, as Prabhu et al. and Ghunaim et al., CVPR 2023, count
compute), at the profile's budgets (`experiments.BUDGETS`; replay's default is 4 passes,
full retraining's 12-20, 16 on average, on quick data-incremental MNIST, the quick grid's last
budget), with `full_retrain` at its own cost as
the reference. Curves: x = training FLOPs over all retraining rounds (log scale), y = final
average accuracy, band = sd over seeds; the table compares the methods at each budget.""",
    extra_params=('budgets = None           # None -> experiments.BUDGETS[profile]; or "1,2,4,16"\n'
                  'budget_scenarios = None  # None -> experiments.BUDGET_SCENARIOS[profile]\n'
                  'budget_methods = None    # None -> experiments.BUDGET_METHODS\n'),
    extra_setup=(", budgets=budgets, budget_scenarios=budget_scenarios, "
                 "budget_methods=budget_methods"),
    cells=[
        "grid = nb.run_grid()",
        '''fig = plots.pareto(grid.summaries, cost="train_flops", title="training FLOPs vs final accuracy")
nb.save_figure(fig, nb.name("flops"), grid=grid,
               caption="Training FLOPs over all retraining rounds vs final average accuracy")
fig = plots.pareto(grid.summaries, cost="retrain_seconds", title="retraining time vs final accuracy")
nb.save_figure(fig, nb.name("seconds"), grid=grid,
               caption="Retraining wall-clock time over all rounds vs final average accuracy")''',
        '''table = report.summary_table(grid.summaries)
nb.save_table(table, nb.name("results"), grid=grid, caption="Cost and accuracy of every method")
report.formatted_table(table)''',
        '''from paperlib.repro import budget_plots

sweep_settings, sweep_methods, reference_settings = experiments.budget_grids(
    nb, budgets, budget_scenarios, budget_methods)
sweep = experiments.run_grid(sweep_settings, sweep_methods, nb.seeds)
references = nb.run_grid(reference_settings, methods=experiments.BUDGET_REFERENCES)
curves = sweep + references
print(f"budget sweep: {len(curves.runs)} runs, {curves.wall_seconds:.0f} s")''',
        '''fig = budget_plots.budget_curves(curves.summaries, title="accuracy against training compute")
nb.save_figure(fig, nb.name("budget_curves"), grid=curves,
               caption="Final average accuracy against training FLOPs (all retraining rounds, log "
                       "scale) at equal per-round budgets; band = sd over seeds; full_retrain at "
                       "its own cost")
table = budget_plots.matched_budget_table(curves.summaries)
nb.save_table(table, nb.name("matched_budgets"), grid=curves,
              caption="Final average accuracy (mean ± sd over seeds) of every method at each "
                      "per-round budget (full-model passes over the new chunk)")
nb.save_table(budget_plots.budget_claims_table(curves.summaries), nb.name("budget_points"),
              grid=curves, caption="Every budget point (mean ± sd over seeds), the budget folded "
                                    "into the scenario (scenario@budget)")
table''',
    ])


def build(name: str) -> nbformat.NotebookNode:
    spec = NOTEBOOKS[name]
    title = f"# {name[:2]} · {spec['title']}\n\n{spec['intro']}\n{PROVENANCE}"
    run_hint = (f"\nRun it with `python -m paperlib.repro.notebooks notebooks/{name}.ipynb "
                f"out.ipynb -p profile quick` (strict parameter names) or `make reproduce`.")
    cells = [new_markdown_cell(title + run_hint),
             new_code_cell(COMMON_PARAMS.format(extra=spec["extra_params"]).rstrip() + "\n",
                           metadata={"tags": ["parameters"]}),
             new_code_cell(SETUP.format(name=name, extra=spec["extra_setup"]).rstrip() + "\n")]
    cells += [new_code_cell(src.rstrip() + "\n") for src in spec["cells"]]
    for i, cell in enumerate(cells):  # stable ids -> byte-identical regeneration
        cell["id"] = f"{name[:2]}-{i:02d}"
    for cell in cells:
        cell["source"] = cell["source"].rstrip("\n")
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python notebooks/_build.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
