"""Run benchmarks and assemble benchmarks/RESULTS.md from their sections.

Usage::

    python benchmarks/run.py                 # every benchmark (long: about an hour here)
    python benchmarks/run.py boston_search   # one or more by name
    python benchmarks/run.py --assemble      # only rebuild RESULTS.md from results/*.md

Each benchmark writes ``results/<name>.md`` (its RESULTS.md section, with the command) and
``results/<name>.json`` (raw figures); RESULTS.md is the sections in the order below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import HERE, RESULTS, machine

ORDER = ["boston_search", "ensemble_compare", "ensemble_fit", "book_tasks", "backends",
         "search_efficiency", "drills", "speed", "quality"]


def assemble() -> Path:
    parts = [
        "# Benchmark results\n",
        "Produced by `python benchmarks/run.py [NAME ...]` (each section names its own command)."
        f" Machine: {machine()}, no GPU. Numbers on stand-in data are labelled as such.\n",
    ]
    for name in [*ORDER, "notes"]:  # notes.md: hand-written reading of the figures
        section = RESULTS / f"{name}.md"
        if section.is_file():
            parts.append(section.read_text())
    path = HERE / "RESULTS.md"
    path.write_text("\n".join(parts))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {ORDER}")
    parser.add_argument("--assemble", action="store_true", help="only rebuild RESULTS.md")
    args = parser.parse_args()
    unknown = set(args.names) - set(ORDER)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {ORDER}")
    if not args.assemble:
        for name in args.names or ORDER:
            print(f"== {name}", flush=True)
            print(importlib.import_module(f"benchmarks.{name}").main(), flush=True)
    print(f"wrote {assemble()}")


if __name__ == "__main__":
    main()
