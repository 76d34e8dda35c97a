"""Reports: pure functions from an experiment store to data, then rendering.

The data half (:mod:`reports.leaderboard`, :mod:`reports.answer`, :mod:`reports.ensemble`,
:mod:`reports.series`, :mod:`reports.importance`) returns plain dataclasses, shared by the
terminal (``python -m search show``) and the HTML report (:mod:`reports.html`, Jinja2
templates in ``reports/templates``). Both read the store only, never a backend, so a run of
any backend is reported the same way.
"""

from pathlib import Path

from reports.answer import Answer, AnswerRow, answer
from reports.ensemble import EnsembleSection, ensemble_section
from reports.leaderboard import Row, RunSummary, leaderboard, summarize

__all__ = ["Answer", "AnswerRow", "EnsembleSection", "Row", "RunSummary", "answer",
           "ensemble_section", "leaderboard", "summarize", "write_index", "write_report"]


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Lazy alias of :func:`reports.html.write_report` (plotly loads only when reporting)."""
    from reports.html import write_report as _write

    return _write(run_dir, out)


def write_index(runs_dir: str | Path, out: str | Path | None = None, *,
                write_runs: bool = True) -> tuple[Path, list[Path]]:
    """Lazy alias of :func:`reports.html.write_index`."""
    from reports.html import write_index as _write

    return _write(runs_dir, out, write_runs=write_runs)
