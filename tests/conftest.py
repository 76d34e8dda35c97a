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
