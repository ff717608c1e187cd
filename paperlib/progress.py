"""Progress bars that suit where the code runs, chosen by ``PAPERLIB_PROGRESS``:

- ``auto`` (default): :mod:`tqdm.auto`, a widget in JupyterLab (ipywidgets is a dependency)
  and plain text in a terminal;
- ``off``: no bar. The papermill wrapper (:mod:`paperlib.repro.notebooks`) sets it for the kernel,
  because a bar's updates would land in the executed notebook as stderr streams with timings;
  papermill's own per-cell bar shows the progress in the terminal instead.

>>> import os
>>> os.environ[ENV] = "off"
>>> list(progress_bar(range(3), desc="demo"))
[0, 1, 2]
>>> os.environ[ENV] = "of"
>>> progress_bar(range(3))
Traceback (most recent call last):
...
paperlib.spec.ConfigError: PAPERLIB_PROGRESS='of' (did you mean 'off'?); valid: auto, off
>>> del os.environ[ENV]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from paperlib.spec import ConfigError, did_you_mean

ENV = "PAPERLIB_PROGRESS"
MODES = ("auto", "off")


def progress_mode() -> str:
    """The mode named by ``PAPERLIB_PROGRESS`` (default ``auto``); a clear error otherwise."""
    mode = os.environ.get(ENV, "").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(f"{ENV}={mode!r}{did_you_mean(mode, list(MODES))}; "
                          f"valid: {', '.join(MODES)}")
    return mode


def progress_bar(iterable: Iterable[Any], *, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm(iterable, **kwargs)`` of the current mode (``disable`` turns it off too); the
    returned bar supports ``set_postfix_str`` whichever mode is active."""
    if disable or progress_mode() == "off":
        from tqdm.std import tqdm

        return tqdm(iterable, disable=True, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
