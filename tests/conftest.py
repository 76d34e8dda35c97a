"""Shared fixtures: the real CLI in a subprocess, and paths to the test spaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
