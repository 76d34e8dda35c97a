"""Shared fixtures: the real CLI in a subprocess, and paths to the test spaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
TEST_SPACES = Path(__file__).resolve().parent / "spaces"


@pytest.fixture
def spaces_dir() -> Path:
    return TEST_SPACES


def cli(*args: str | Path, cwd: Path | None = None, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m search ARGS`` exactly as a user would; capture text output."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200",
                "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "search", *map(str, args)], cwd=cwd or ROOT, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def run_cli():  # type: ignore[no-untyped-def]
    return cli


def _ragged(rng: np.random.Generator, n: int, vocab: int, max_len: int) -> np.ndarray:
    """``n`` lists of raw word ranks in ``[1, vocab]``, as Keras' IMDB/Reuters files hold."""
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = [int(w) for w in rng.integers(1, vocab + 1, size=rng.integers(1, max_len))]
    return out


@pytest.fixture
def ragged():  # type: ignore[no-untyped-def]
    """Generator of Keras-layout word-rank sequences, for tests that write imdb/reuters.npz."""
    return _ragged



def _postgres_server_module():  # type: ignore[no-untyped-def]
    """tests/postgres_server.py, loaded by path (tests/ is not a package; importlib mode)."""
    import importlib.util

    name = "search_tests_postgres_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parent / "postgres_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def postgres_url():  # type: ignore[no-untyped-def]
    """SQLAlchemy URL ``postgresql+psycopg2://search:PASSWORD@127.0.0.1:PORT/searchdb`` of a
    real PostgreSQL server started for this session and always stopped after it (see
    tests/postgres_server.py). Skips, saying what to install, only if PostgreSQL's server
    binaries or psycopg2 are missing; any other start-up failure is an error."""
    pg = _postgres_server_module()
    try:
        pg.check_available()
    except pg.Unavailable as exc:
        pytest.skip(str(exc))
    with pg.postgres_server() as server:
        yield server.url()
