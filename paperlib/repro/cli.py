"""Command line: ``paperlib run -p NAME VALUE ...`` with the notebooks' parameter vocabulary.

Examples::

    paperlib run -p dataset mnist -p scenario class_incremental -p method bandit -p profile quick
    paperlib run -p dataset digits -p method replay --summary-json out.json
    paperlib params            # the vocabulary, with each parameter's type and help
    paperlib methods           # methods, their hyper-parameters and defaults
    paperlib plan -p profile paper   # every notebook's grid: runs, steps, FLOPs, predicted time
    paperlib sweep -p profile quick  # every run of the profile's notebooks, in parallel
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from paperlib.serving.config import FIELDS, ConfigError


def _format_summary(summary: dict) -> str:
    lines = [f"{summary['method']} on {summary['dataset']}/{summary['scenario']} "
             f"(seed {summary['seed']}, profile {summary['profile']})"]
    by_split = ", ".join(f"{k} {v:.4f}" for k, v in summary["final_accuracy_by_split"].items())
    rows = [
        ("final average accuracy", f"{summary['final_avg_accuracy']:.4f}"),
        ("final accuracy by split", by_split),
        ("forgetting", f"{summary['forgetting']:.4f}"),
        ("prequential accuracy", f"{summary['prequential_accuracy']:.4f}"),
        ("negative flip rate (mean)", f"{summary['negative_flip_rate']:.4f}"),
        ("retraining seconds (rounds 1..R)", f"{summary['retrain_seconds']:.2f}"),
        ("training FLOPs (rounds 1..R)", f"{summary['train_flops']:.3e}"),
        ("trainable fraction", f"{summary['trainable_fraction']:.3f}"),
        ("results", str(summary.get("results_path"))),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(lines + [f"  {k:<{width}}  {v}" for k, v in rows])


def _round_table(rounds) -> str:  # noqa: ANN001 - DataFrame
    cols = ["round", "chunk", "avg_accuracy", "served_accuracy", "negative_flip_rate",
            "retrain_seconds", "cumulative_retrain_seconds"]
    return rounds[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:  # its own parser (paperlib.repro.plan)
        from paperlib.repro.plan import main as plan_main

        return plan_main(argv[1:])
    parser = argparse.ArgumentParser(prog="paperlib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run one configuration (cached in results/)")
    run_p.add_argument("-p", "--param", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="a parameter (repeatable)")
    run_p.add_argument("--summary-json", type=Path, help="write the summary as JSON here")
    run_p.add_argument("--force", action="store_true", help="recompute even if cached")
    run_p.add_argument("--no-store", action="store_true", help="do not write to the results store")
    run_p.add_argument("--results", type=Path, help="results root (default: results/)")
    run_p.add_argument("--quiet", action="store_true", help="no progress bar or round table")
    sub.add_parser("params", help="list the parameter vocabulary")
    sub.add_parser("methods", help="list methods and their hyper-parameters")
    sub.add_parser("plan", help="every notebook's grid: runs, steps, FLOPs and predicted time")
    from paperlib.repro.sweep_cli import add_cli, cli

    add_cli(sub)
    args = parser.parse_args(argv)
    if args.command == "sweep":
        return cli(args)

    if args.command == "params":
        for name, spec in FIELDS.items():
            choices = f" {list(spec.choices)}" if spec.choices else ""
            print(f"{name:<16} {spec.kind}{choices}  {spec.help}")
        return 0
    if args.command == "methods":
        from paperlib.method.methods import METHODS, hparam_sources

        sources = hparam_sources()
        for m in METHODS.values():
            print(f"{m.name:<20} {m.description}")
            for k, v in m.hparams.items():
                print(f"{'':<4}{k:<20} {v!s:<10} source: {sources[k]}")
        return 0

    from paperlib.serving.runner import run

    params: dict[str, str] = {}
    for name, value in args.param:
        if name in params:
            print(f"error: parameter {name!r} given twice", file=sys.stderr)
            return 2
        params[name] = value
    try:
        result = run(params, store=not args.no_store, force=args.force,
                     progress=not args.quiet, results=args.results)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(_round_table(result.rounds))
    print(("(cache hit) " if result.cached else "") + _format_summary(result.summary))
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(result.summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
