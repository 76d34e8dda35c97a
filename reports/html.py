"""Self-contained HTML reports: one per run, and an index page across runs.

The page is rendered by Jinja2 with autoescaping on, so every user string (space names,
parameter values, error messages) is HTML-escaped; plots are Plotly figures whose JSON
Plotly itself escapes (``<`` becomes ``\\u003c``). plotly.js is embedded once per file, in
the head, so the report opens from disk in any browser with no server and no network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import gzip
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
import plotly.io as pio

from reports import figures
from reports.answer import Answer, answer
from reports.ensemble import EnsembleSection, ensemble_section
from reports.importance import param_importance
from reports.leaderboard import Row, RunSummary, leaderboard, summarize
from reports.series import history, learning_curves, parallel
from search.errors import SearchError
from search.store import RunStore, atomic_write, list_runs

__all__ = ["REPORT_NAME", "TOP_CURVES", "TOP_SPREAD", "fmt", "plotly_js_gzip_base64",
           "render_report", "write_index", "write_report"]

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"
#: Trials whose per-fold scores / learning curves are plotted (more would be unreadable and,
#: for curves, make the file large).
TOP_SPREAD = 10
TOP_CURVES = 3

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number as a reader wants it (4 significant digits); '-' for missing/NaN."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return "-" if not math.isfinite(x) else f"{x:.{digits}g}"
    return str(x)


def fmt_seconds(s: float | None) -> str:
    """Durations from seconds to hours, in the unit a reader thinks in."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_time(ts: float | None) -> str:
    return "-" if not ts else f"{_dt.datetime.fromtimestamp(ts):%Y-%m-%d %H:%M}"


def sort_key(x: Any) -> str:
    """A cell's ``data-v``: numbers as numbers, missing as '' (sorted last by the page)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if isinstance(x, bool):
        return str(x).lower()
    return repr(x) if isinstance(x, (int, float)) else str(x)


_ENV.filters.update(fmt=fmt, secs=fmt_seconds, when=fmt_time, sortkey=sort_key)


@dataclass(frozen=True)
class Plot:
    """A rendered figure (``html``) or the reason there is none."""

    key: str
    title: str
    html: str = ""
    reason: str = ""


def _div(fig: go.Figure, key: str) -> str:
    """A placeholder div and the figure's JSON; the page draws it once plotly.js is unpacked.

    Drawing after the page is laid out (not while it is parsed, as Plotly's own HTML does)
    also sizes each figure to its final column instead of the page's full width.
    ``plotly.io.to_json`` already writes ``<`` as ``\\u003c``; replacing any left makes it
    certain that no string in the JSON can close the script element.
    """
    spec = pio.to_json(fig, engine="json").replace("<", "\\u003c")
    height = int(fig.layout.height or 360)
    return (f'<div id="plot-{key}" class="plotly-target" style="height:{height}px"></div>'
            f'<script type="application/json" class="plot-spec" data-for="plot-{key}">'
            f"{spec}</script>")


@functools.lru_cache(maxsize=1)
def plotly_js_gzip_base64() -> str:
    """plotly.js (the copy the installed ``plotly`` package ships), gzipped and base64-encoded.

    Embedded as is, plotly.js alone is 4.8 MB, which leaves a report almost no room under
    its ~5 MB budget; gzipped it is 1.5 MB (2 MB in base64). The page unpacks it with the
    browser's built-in ``DecompressionStream`` (Chrome/Edge 80+, Firefox 113+, Safari 16.4+),
    so the file still needs no server and no network.
    """
    from plotly.offline import get_plotlyjs

    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _plots(store: RunStore, run: dict[str, Any], trials: list[Any], board: list[Row]
           ) -> list[Plot]:
    metric, direction = run["metric"], run["direction"]
    space = run.get("params") or []
    ranked = [r for r in board if r.rank is not None]
    out: list[Plot] = []
    h = history(trials, direction)
    out.append(Plot("history", "Optimisation history",
                    _div(figures.history_figure(h, metric, direction), "history")) if h.trials else
               Plot("history", "Optimisation history", reason="no completed trial yet"))
    imp = param_importance(trials, space, direction, seed=int(run["settings"].get("seed", 0)))
    note = (f" Not analysed (absent from some trials or never varied): "
            f"{', '.join(imp.left_out)}." if imp.left_out else "")
    out.append(Plot("importance", "Parameter importance",
                    _div(figures.importance_figure(imp), "importance"),
                    reason=f"Method: {imp.method}.{note}") if imp.values else
               Plot("importance", "Parameter importance", reason=f"No plot: {imp.reason}."))
    par = parallel(ranked, space)
    cond = (f" Conditional parameters (no axis): {', '.join(par.conditional)}."
            if par.conditional else "")
    out.append(Plot("parallel", "Parallel coordinates",
                    _div(figures.parallel_figure(par, metric, direction), "parallel"),
                    reason=cond.strip()) if len(par.trials) >= 2 and par.axes else
               Plot("parallel", "Parallel coordinates",
                    reason="No plot: needs 2 completed trials and a parameter that varied."))
    top = ranked[:TOP_SPREAD]
    out.append(Plot("folds", "Per-fold scores",
                    _div(figures.fold_spread(top, metric, direction), "folds"))
               if top else Plot("folds", "Per-fold scores", reason="no completed trial yet"))
    curves = learning_curves(trials, [r.number for r in ranked[:TOP_CURVES]])
    out.append(Plot("curves", "Learning curves",
                    _div(figures.learning_curves_figure(curves), "curves")) if curves else
               Plot("curves", "Learning curves",
                    reason="No plot: the top trials' records hold no loss history."))
    return out


def _ensemble_plots(section: EnsembleSection | None) -> dict[str, list[Plot]]:
    if section is None:
        return {}
    out: dict[str, list[Plot]] = {}
    for kind in section.kinds:
        if not kind.methods:
            continue
        out[kind.kind] = [
            Plot(f"weights-{kind.kind}", "weights",
                 _div(figures.ensemble_weights(kind), f"weights-{kind.kind}")),
            Plot(f"loo-{kind.kind}", "leave-one-out",
                 _div(figures.leave_one_out(kind, section.metric), f"loo-{kind.kind}")),
        ]
    return out


def _param_names(run: dict[str, Any], rows: Sequence[Row]) -> list[str]:
    """Parameter columns: the traced space's order first, then any others trials have."""
    traced = [str(p.get("name")) for p in run.get("params") or [] if isinstance(p, dict)]
    seen = list(dict.fromkeys(k for r in rows for k in r.params))
    return [n for n in traced if n in seen] + [n for n in seen if n not in traced]


def report_context(run_dir: str | Path) -> dict[str, Any]:
    """Everything the run template shows, computed from the store."""
    store = RunStore(run_dir).require()
    run = store.read_run()
    trials = store.trials()
    board = leaderboard(store.root, include_unfinished=True, trials=trials)
    summary: RunSummary = summarize(store.root, trials=trials)
    ans: Answer = answer(store.root, trials=trials,
                         board=[r for r in board if r.rank is not None])
    section = ensemble_section(store.root)
    n_folds = max([len(r.fold_scores) for r in board] + [int(summary.folds)])
    return {
        "s": summary, "run": run, "answer": ans, "headline": ans.headline(), "rows": board,
        "params": _param_names(run, board), "n_folds": n_folds, "ensemble": section,
        "ensemble_plots": _ensemble_plots(section),
        "plots": _plots(store, run, trials, board), "generated": time.time(),
    }


def render_report(run_dir: str | Path) -> str:
    """The run's report as one HTML string (plotly.js included, compressed)."""
    ctx = report_context(run_dir)
    return _ENV.get_template("report.html.j2").render(plotlyjs_gz=plotly_js_gzip_base64(), **ctx)


def _write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (a reader never sees half a report)."""
    with atomic_write(path, "wb") as fh:
        fh.write(text.encode("utf-8"))
    path.chmod(0o644)  # a report is for sharing; the temporary file was private


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's report (default ``RUN/report.html``); return its absolute path."""
    store = RunStore(run_dir).require()
    path = Path(out) if out is not None else store.root / REPORT_NAME
    _write_text(path, render_report(store.root))
    return path.resolve()


def _stale(store: RunStore, report: Path) -> bool:
    """True if the report is missing or older than the run's records."""
    if not report.is_file():
        return True
    made = report.stat().st_mtime
    sources = [store.run_json_path, store.root / "ensemble.json",
               *(store.root / "trials").glob("*/trial.json")]
    return any(p.is_file() and p.stat().st_mtime > made for p in sources)


@dataclass(frozen=True)
class IndexRow:
    """One run on the index page; ``error`` set when the run could not be read."""

    name: str
    link: str | None
    summary: RunSummary | None
    answer: Answer | None
    error: str = ""


def write_index(runs_dir: str | Path, out: str | Path | None = None, *,
                write_runs: bool = True) -> tuple[Path, list[Path]]:
    """Write an index page of the runs under ``runs_dir`` (default ``DIR/index.html``).

    With ``write_runs``, each run's own report is (re)written first where it is missing or
    older than the run's records, so every link works. Returns the index path and the run
    reports written.
    """
    base = Path(runs_dir).resolve()
    path = (Path(out) if out is not None else base / INDEX_NAME).resolve()
    written: list[Path] = []
    rows: list[IndexRow] = []
    for store in list_runs(base):
        report = store.root / REPORT_NAME
        try:
            if write_runs and _stale(store, report):
                written.append(write_report(store.root, report))
            trials = store.trials()
            s = summarize(store.root, trials=trials)
            a = answer(store.root, trials=trials)
        except (SearchError, OSError, ValueError, KeyError) as exc:
            rows.append(IndexRow(store.root.name, None, None, None, f"unreadable: {exc}"))
            continue
        link = os.path.relpath(report, path.parent) if report.is_file() else None
        rows.append(IndexRow(s.name, link, s, a))
    html = _ENV.get_template("index.html.j2").render(base=str(base), rows=rows,
                                                     generated=time.time())
    _write_text(path, html)
    return path, written
