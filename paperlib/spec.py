"""The error and parameter-spec types every layer shares (the lowest module of the package).

:class:`ConfigError` is the one error type for bad input (unknown or mistyped names, values out
of range), :class:`Spec` describes how one named parameter is typed and checked, and
:func:`did_you_mean` is the suggestion appended to every "unknown name" message. They live here,
below :mod:`paperlib.serving.config` and :mod:`paperlib.method.methods`, so that both can use them without an
import circle; :mod:`paperlib.serving.config` re-exports them.

>>> did_you_mean("bandt", ["bandit", "finetune"])
" (did you mean 'bandit'?)"
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A parameter is unknown, mistyped or out of range."""


@dataclass(frozen=True)
class Spec:
    """How a parameter is typed and checked: ``kind`` in int/float/bool/str/ints;
    ``choices`` or ``lo``/``hi`` bounds; ``optional`` allows None."""

    kind: str
    choices: tuple[Any, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    optional: bool = False
    help: str = ""


def did_you_mean(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
