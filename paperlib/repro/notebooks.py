"""Execute a notebook with papermill, strictly.

papermill only *warns* about a parameter the notebook does not declare, so a typo such as
``-p profle quick`` would silently run the default profile. :func:`execute` reads the names in
the notebook's ``parameters`` cell first and raises :class:`~paperlib.serving.config.ConfigError`
listing the valid ones. Inside the notebook, keys of ``overrides`` are validated by the engine
(:class:`~paperlib.serving.config.RunConfig`), and a ``ConfigError`` raised by a cell is re-raised here
as a ``ConfigError`` (not a papermill traceback dump).

The executed notebook is written under a temporary name next to ``output`` and moved into place
only when every cell succeeded (a failed one is kept as ``<output stem>.failed.ipynb``). It is
written clean (:func:`paperlib.repro.nbclean.clean_notebook`: no timings, kernel ids or temporary
paths), progress bars are off inside the kernel (``PAPERLIB_PROGRESS=off``; papermill's own
per-cell bar shows progress in the terminal), and what a reader should not see in an output
(a stderr stream, a warning, an absolute path, a stray return value) is reported on stderr.

Command line (used by ``reproduce.mk``)::

    python -m paperlib.repro.notebooks notebooks/02_class_incremental.ipynb out.ipynb \\
        -p profile quick -p dataset cifar10 -p seeds 0,1 -p overrides '{"epochs": 1}'

Values are read as JSON when they parse (numbers, lists, objects, true/false/null), ``None`` is
None, anything else is a string.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from paperlib.progress import ENV as PROGRESS_ENV
from paperlib.repro.nbclean import clean_notebook, output_problems
from paperlib.serving.store import REPO_ROOT
from paperlib.spec import ConfigError, did_you_mean


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """``{name: default source text}`` of the notebook's ``parameters`` cell."""
    import papermill

    info = papermill.inspect_notebook(str(notebook))
    return {name: spec.get("default") for name, spec in info.items()}


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` when ``parameters`` names something the notebook's
    ``parameters`` cell does not declare."""
    valid = list(notebook_parameters(notebook))
    if not valid and parameters:
        raise ConfigError(f"{notebook} has no cell tagged 'parameters'")
    for name in parameters:
        if name not in valid:
            raise ConfigError(f"unknown parameter {name!r}{did_you_mean(name, valid)} for notebook "
                              f"{Path(notebook).name}. Valid parameters: {', '.join(valid)}")


def parse_value(text: str) -> Any:
    """A command-line parameter value: JSON when it parses, ``None``/``True``/``False``, else
    the string itself.

    >>> parse_value("3"), parse_value("0,1"), parse_value('{"epochs": 1}'), parse_value("None")
    (3, '0,1', {'epochs': 1}, None)
    """
    if text in ("None", "none"):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@contextlib.contextmanager
def _kernel_env(extra: Mapping[str, str]) -> Iterator[None]:
    """Environment the kernel inherits: the repository on ``PYTHONPATH`` (a source checkout
    works without installing) plus ``extra``; restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", *extra)}
    path = os.environ.get("PYTHONPATH", "")
    parts = [p for p in path.split(os.pathsep) if p]
    if str(REPO_ROOT) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *parts])
    os.environ.update({k: str(v) for k, v in extra.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(notebook: str | Path, output: str | Path, parameters: Mapping[str, Any] | None = None,
            *, cwd: str | Path | None = None, kernel_name: str = "python3",
            log_output: bool = False, progress_bar: bool = False,
            env: Mapping[str, str] | None = None, start_timeout: int = 120) -> Path:
    """Validate ``parameters`` against the notebook, execute it with papermill (working
    directory ``cwd``, default: the notebook's folder) and move the result to ``output``.

    Raises:
        ConfigError: an unknown parameter name, or a cell raised ``ConfigError`` (e.g. a mistyped
            key in ``overrides``).
        papermill.PapermillExecutionError: any other failing cell.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp-{os.getpid()}.ipynb")
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    try:
        with _kernel_env({PROGRESS_ENV: "off", **(env or {})}):
            papermill.execute_notebook(
                str(notebook), str(tmp), parameters=parameters, kernel_name=kernel_name,
                cwd=str(cwd if cwd is not None else notebook.parent), log_output=log_output,
                progress_bar=progress_bar, start_timeout=start_timeout)
    except PapermillExecutionError as exc:
        if tmp.exists():
            os.replace(tmp, failed)
        if exc.ename == "ConfigError":
            raise ConfigError(f"{notebook.name}: {exc.evalue}") from exc
        raise
    except BaseException:
        if tmp.exists():
            os.replace(tmp, failed)
        raise
    nbformat.write(clean_notebook(nbformat.read(tmp, as_version=4)), tmp)
    os.replace(tmp, output)
    failed.unlink(missing_ok=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperlib.repro.notebooks",
                                     description="Run a notebook with validated parameters.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a notebook parameter (repeatable)")
    parser.add_argument("--cwd", type=Path, default=None,
                        help="working directory of the kernel (default: the notebook's folder)")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--log-output", action="store_true", help="stream cell output")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    params = {name: parse_value(value) for name, value in args.parameter}
    t0 = time.perf_counter()
    try:
        execute(args.notebook, args.output, params, cwd=args.cwd, kernel_name=args.kernel,
                log_output=args.log_output, progress_bar=not args.no_progress)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.notebook} -> {args.output} ({time.perf_counter() - t0:.0f} s)")
    import nbformat

    for problem in output_problems(nbformat.read(args.output, as_version=4)):
        print(f"warning: {args.output}: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
