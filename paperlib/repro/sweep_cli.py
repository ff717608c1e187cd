"""The ``paperlib sweep`` command: every run the notebooks of a profile need
(:func:`paperlib.repro.grids.profile_grid`), computed by :func:`paperlib.repro.sweep.sweep`. Above
:mod:`paperlib.repro.grids`, which :mod:`paperlib.repro.sweep` sits below (``run_grid`` may sweep)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from paperlib.repro.sweep import SCHEDULER_ENV, SweepError, missing_runs, sweep
from paperlib.serving.store import results_root
from paperlib.spec import ConfigError


def add_cli(sub: Any) -> None:
    """The ``paperlib sweep`` sub-command (see :func:`cli`)."""
    p = sub.add_parser("sweep", help="compute every run the notebooks of a profile need, in "
                       "parallel (then the notebooks render from the cache)")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="notebook parameter: profile (default paper), device, seeds, methods, "
                   "overrides, dataset (restricts 02/04 to that dataset)")
    p.add_argument("--notebook", action="append", metavar="NAME",
                   help="only this notebook's runs (repeatable), e.g. 04_real_streams")
    p.add_argument("--scheduler", help=f"local (default; ${SCHEDULER_ENV} overrides it), serial, "
                   "or the address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="worker processes of the local cluster "
                   "(default: one per core)")
    p.add_argument("--results", type=Path, help="results root (default: $PAPERLIB_RESULTS or "
                   "results/); a path every worker shares with a remote scheduler")
    p.add_argument("--retries", type=int, default=1, help="reruns of a run that raised")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for a remote scheduler and its first worker")
    p.add_argument("--force", action="store_true", help="recompute the stored runs too")
    p.add_argument("--dry-run", action="store_true", help="list the runs, computing nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cli(args: Any) -> int:
    """``paperlib sweep``: 0 when every run is stored, 1 when some failed (listed with their
    configurations and tracebacks), 2 on bad input or an unusable cluster, 130 on Ctrl-C."""
    from paperlib.repro.grids import profile_grid
    from paperlib.repro.notebooks import parse_value

    params: dict[str, Any] = {}
    for name, value in args.param:
        params[name] = parse_value(value)
    profile = str(params.pop("profile", "paper"))
    try:
        configs = profile_grid(profile, params, args.notebook)
        if args.dry_run:
            root = Path(args.results) if args.results else results_root()
            missing = {id(c) for c in missing_runs(configs, root)}
            for c in configs:
                state = "missing" if id(c) in missing else "stored "
                print(f"{state} {c.method} {c.dataset}/{c.scenario} seed {c.seed}")
            print(f"{len(configs)} runs, {len(missing)} missing in {root}")
            return 0
        result = sweep(configs, scheduler=args.scheduler, workers=args.workers,
                       results=args.results, force=args.force, retries=args.retries,
                       progress=not args.quiet, connect_timeout=args.timeout)
    except (ConfigError, SweepError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(result.report())
    return 0 if result.ok else 1
