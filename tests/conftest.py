"""Shared fixtures: the offline data mirror and a session-wide temporary data root."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_mirror() -> Path | None:
    """The mirror folder from ``$PAPERLIB_DATA_MIRROR`` (None when unset, empty or missing)."""
    value = os.environ.get("PAPERLIB_DATA_MIRROR", "")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def need_mirror(data_mirror: Path | None) -> Callable[..., Path]:
    """``need_mirror("mnist/train-images-idx3-ubyte.gz", ...)`` -> the mirror folder.

    Tests never use the network, so a missing mirror file SKIPS the test, except when
    ``$CI == "true"``: there the mirror is part of the contract and its absence FAILS the test.
    """

    def require(*files: str) -> Path:
        missing = [f for f in files if data_mirror is None or not (data_mirror / f).is_file()]
        if data_mirror is not None and not missing:
            return data_mirror
        reason = (f"data mirror unavailable (PAPERLIB_DATA_MIRROR={data_mirror}; missing "
                  f"{', '.join(missing)}); set PAPERLIB_DATA_MIRROR=<dir> to run this test")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI run without the data mirror: {reason}")
        pytest.skip(reason)

    return require


@pytest.fixture(scope="session")
def session_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root shared by all tests of the session (decoded caches live here, not in data/)."""
    return tmp_path_factory.mktemp("paperlib-data")
