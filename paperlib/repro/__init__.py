"""Reproduction: grids of runs and the runs each notebook needs, sweeps on Dask and process
pools, the notebooks' glue and strict papermill wrapper, executed-notebook cleaning, seaborn
figures, tables and the manifest, checked README claims and reproduction checks, the GPU plan,
bundle and check, the Seq-MNIST reference, benchmarks and the command line. The top layer.
Modules: bench, bench_rivals, bench_table, bench_targets, budget_plots, bundle, calibrate,
claims, cli, experiments, gpu_check, gridrun, grids, labels, manifest, nbclean, notebook_setup,
notebooks, plan, plan_count, plan_passes, plots, pool, reference, report, reprocheck, sweep,
sweep_cli."""
