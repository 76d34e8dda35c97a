"""What the terminal shows: the live progress bar, leaderboard tables, ``list``, ``show``
and ``report``.

Part of the CLI layer (it prints); :mod:`search.cli` registers the commands defined here.
The figures come from :mod:`reports` (the store only), so the terminal and the HTML report
never disagree.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from search.checking import CheckReport
from search.errors import SearchError, UsageError
from search.events import SearchEvents
from search.store import FoldRecord, RunStore, TrialRecord, list_runs

stdout = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

__all__ = ["RichEvents", "err", "list_cmd", "report", "run_epilogue", "show", "stdout"]


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _params(params: dict[str, Any]) -> str:
    """All parameters, never cut: the table wraps them at spaces to the terminal's width."""
    return " ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in params.items())


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(round(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class RichEvents(SearchEvents):
    """Live progress: trial n/N, the fold running, the best score so far, an ETA.

    The ETA is this session's mean wall time per finished trial times the trials left
    (``--jobs`` and Ray finish several at once, which this counts naturally); Rich's own
    estimate forgets samples older than 30 s, i.e. every trial of a real search. On
    ``--resume`` the best so far is read from the store before the first new trial ends.
    """

    def __init__(self, *, resumed: bool = True) -> None:
        """``resumed``: this session continues a run (False: a new run, whose trials done
        at the start are the ones this session already ran, such as the default point
        before ``--jobs`` workers start: nothing to announce)."""
        self.resumed = resumed
        self.metric = "score"
        self.bar = Progress(
            TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"), console=err, transient=False,
        )
        self.task: Any = None
        self.folds = 0
        self.best = "-"
        self.total = 0
        self.done_at_start = 0
        self.started = 0.0

    def search_started(self, *, run_dir: Path, total: int, done: int, folds: int,
                       metric: str) -> None:
        self.folds, self.metric, self.total = folds, metric, total
        self.done_at_start, self.started = done, time.monotonic()
        err.print(f"run directory: {run_dir}")
        self.best = _best_so_far(run_dir)
        if self.resumed and done and self.best != "-":
            err.print(f"resuming: {done} trials done, best {metric} so far {self.best}")
        self.bar.start()
        self.task = self.bar.add_task("", total=total, completed=done, eta="-")
        self._describe("starting")

    def trial_started(self, number: int) -> None:
        self._describe(f"trial {number} fold 1/{self.folds}")

    def fold_finished(self, record: TrialRecord, fold: FoldRecord) -> None:
        nxt = min(fold.fold + 2, self.folds)
        self._describe(f"trial {record.number} fold {nxt}/{self.folds} "
                       f"(last {self.metric} {_fmt(fold.score)})")

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        if best is not None:
            self.best = f"{_fmt(best.score)} (trial {best.number})"
        if record.status == "failed":
            reason = escape(record.error or "")
            self.bar.console.print(f"[yellow]trial {record.number} failed: {reason}")
        self._describe(f"trial {record.number} {record.status}")

    def progress(self, done: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, eta=self.eta(done))

    def eta(self, done: int, now: float | None = None) -> str:
        """Time left as H:MM:SS / M:SS, or '-' before this session finished a trial."""
        finished = done - self.done_at_start
        if finished <= 0:
            return "-"
        elapsed = (time.monotonic() if now is None else now) - self.started
        return _eta(elapsed / finished * max(self.total - done, 0))

    def message(self, text: str) -> None:
        self.bar.console.print(f"[yellow]{escape(text)}")

    def _describe(self, text: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=f"{text} · best {self.metric} {self.best}")

    def stop(self) -> None:
        self.bar.stop()


def _best_so_far(run_dir: Path) -> str:
    """The run's best completed trial as the bar shows it ('-' if none or unreadable)."""
    try:
        store = RunStore(run_dir)
        ranked = store.ranked(store.read_run()["direction"])
    except (SearchError, OSError, KeyError, ValueError):
        return "-"
    return f"{_fmt(ranked[0].score)} (trial {ranked[0].number})" if ranked else "-"


def _leaderboard_table(run_dir: Path, top: int, *, folds: bool = True) -> Table:
    from reports import leaderboard, summarize

    summary = summarize(run_dir)
    rows = leaderboard(run_dir, top=top)
    n_done = summary.counts.get("complete", 0)
    table = Table(title=f"{escape(summary.name)}: best {min(top, n_done)} of {n_done} complete "
                        f"trials ({summary.metric}, {summary.direction})")
    table.add_column("#", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(summary.metric, justify="right")
    table.add_column("± std", justify="right")
    if folds:
        table.add_column("folds")
        table.add_column("best epochs")
    table.add_column("params", overflow="fold", ratio=1, min_width=10)
    for r in rows:
        cells = [str(r.rank), f"{r.number}{' (default)' if r.is_default else ''}", _fmt(r.score),
                 _fmt(r.score_std, 2)]
        if folds:
            cells += [" ".join(_fmt(s) for s in r.fold_scores),
                      " ".join(str(e) for e in r.best_epochs)]
        table.add_row(*cells, escape(_params(r.params)))
    return table


@click.command("list")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("experiments"), show_default=True, help="Where runs live.")
def list_cmd(out: Path) -> None:
    """List runs under --out, one line each."""
    from reports import summarize

    runs = list_runs(out)
    if not runs:
        stdout.print(f"no runs under {out}")
        return
    table = Table(box=None)
    for col in ("run", "space", "trials", "best", "created"):
        table.add_column(col)
    for store in runs:
        try:
            s = summarize(store.root)
        except SearchError as exc:
            table.add_row(store.root.name, f"[red]unreadable: {exc}", "", "", "")
            continue
        done = sum(n for status, n in s.counts.items() if status != "running")
        counts = ", ".join(f"{v} {k}" for k, v in sorted(s.counts.items()))
        best = f"{s.metric} {_fmt(s.best.score)}" if s.best else "-"
        table.add_row(s.name, Path(s.space).name, f"{done}/{s.trials_requested} ({counts})",
                      best, f"{_dt.datetime.fromtimestamp(s.created):%Y-%m-%d %H:%M}")
    stdout.print(table)


def _answer_table(run_dir: Path) -> tuple[Table, list[str]]:
    """The answer first: final ensemble, best single, default point, reference; the notes."""
    from reports import answer

    a = answer(run_dir)
    table = Table(title=a.headline(), title_justify="left", title_style="bold")
    table.add_column("")
    for col in (f"CV {a.metric}", f"test {a.metric}", "test − CV"):
        table.add_column(col, justify="right")
    table.add_column("note", overflow="fold")
    for r in a.rows:
        style = "bold" if r is a.final else None
        table.add_row(r.label, _fmt(r.cv), _fmt(r.test), _fmt(r.gap, 3), r.note, style=style)
    return table, list(a.notes)


def print_answer(run_dir: Path) -> None:
    """Print the answer block (``show`` and the end of ``run``)."""
    table, notes = _answer_table(run_dir)
    stdout.print(table)
    for note in notes:
        stdout.print(f"[yellow]{escape(note)}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--top", type=int, default=10, show_default=True, help="Trials to show.")
def show(run_dir: Path, top: int) -> None:
    """Show a run: the answer first, settings, best trials with per-fold scores, failures,
    ensembles."""
    from reports import leaderboard, summarize
    from reports.answer import read_ensemble
    from reports.html import REPORT_NAME

    s = summarize(run_dir)
    stdout.print(f"[bold]{escape(s.name)}[/]  {escape(str(s.root))}")
    stdout.print(f"space    {escape(s.space)}  ({s.task}, {s.metric} {s.direction})  "
                 f"sha256 {s.space_sha256[:12]}")
    opts = " ".join(f"{k}={v}" for k, v in s.options.items())
    stdout.print(escape(f"search   {s.backend} {opts} "
                        f"folds={s.folds} seed={s.seed} trials={sum(s.counts.values())}/"
                        f"{s.trials_requested} "
                        f"({', '.join(f'{v} {k}' for k, v in s.counts.items())})"))
    rows = RunStore(s.root).read_run().get("rows")
    if rows:
        stdout.print(f"data     {rows['n_train']} training and {rows['n_test']} test rows, both "
                     f"from the space's training split of {rows['n_source']} rows (an outer "
                     "fold of `evaluate`: 'test' is its held-out rows)")
    print_answer(s.root)
    if s.default is not None and s.best is not None:
        stdout.print(f"baseline trial {s.default.number} (the space's default point): "
                     f"{s.metric} {_fmt(s.default.score)}; best trial {s.best.number}: "
                     f"{_fmt(s.best.score)}")
    stdout.print(_leaderboard_table(s.root, top))
    bad = [r for r in leaderboard(run_dir, include_unfinished=True) if r.rank is None]
    if bad:
        table = Table(title="not completed")
        for col in ("trial", "status", "folds done", "reason"):
            table.add_column(col)
        table.columns[-1].overflow = "fold"
        store = RunStore(s.root)
        for r in bad:
            reason, status = r.reason, r.status
            if r.status == "running":
                alive = store.trial_alive(r.number)
                status = "running" if alive else "interrupted"
                reason = ("a live process is running it" if alive else
                          f"run --resume continues it from fold {len(r.fold_scores)}")
            table.add_row(str(r.number), status, str(len(r.fold_scores)), escape(reason))
        stdout.print(table)
    ens = read_ensemble(s.root)
    if ens is None:
        stdout.print(f"no ensemble yet: python -m search ensemble {s.root}")
    else:
        for kind in ("folds", "refit"):
            for table in _ensemble_tables(ens, kind):
                stdout.print(table)
            for note in ens.get("kinds", {}).get(kind, {}).get("notes", []):
                stdout.print(f"[yellow]{kind}: {escape(note)}")
    html = s.root / REPORT_NAME
    if html.is_file():
        stdout.print(f"report: {html}  (python -m search report {s.root} rewrites it)")
    else:
        stdout.print(f"no HTML report yet: python -m search report {s.root}")


def _ensemble_tables(report: dict[str, Any], kind: str) -> list[Table]:
    entry = report["kinds"].get(kind, {})
    if not entry.get("members"):
        return []
    metric, rows = report["metric"], entry["members"]
    members = Table(title=f"{len(rows)} {kind} members{_selection_text(entry)} ({metric}; test "
                          "scores are shown, never fitted on)")
    for col in ("trial", f"CV {metric}", f"OOF {metric}", "test: fold models", "test: refit",
                "leave-one-out gain"):
        members.add_column(col, justify="right")
    for m in rows:
        members.add_row(str(m["trial"]), _fmt(m["cv_score"]), _fmt(m["oof_score"]),
                        _fmt(m["fold_test_score"]), _fmt(m["refit_test_score"]),
                        _fmt(m["leave_one_out"]["gain"], 3))
    methods = Table(title=f"ensembles of {kind} members (weights fitted on OOF predictions, "
                          f"objective {report['objective']}; shrinkage: how far cross-fitting "
                          "over the folds pulled them towards equal weights)")
    for col in ("method", f"OOF {metric}", f"test {metric}", "shrinkage",
                "weights (trial: weight)"):
        methods.add_column(col, justify="right" if col != "weights (trial: weight)" else "left")
    for name, v in entry["methods"].items():
        weights = "  ".join(f"{m['trial']}: {w:.3f}" for m, w in zip(rows, v["weights"],
                                                                    strict=True) if w >= 5e-4)
        shrinkage = v.get("shrinkage")  # absent in reports written before cross-fitting
        methods.add_row(name, _fmt(v["oof_score"]), _fmt(v["test_score"]),
                        "" if shrinkage is None else f"{shrinkage:.2f}", weights)
    return [members, methods]


def _selection_text(entry: dict[str, Any]) -> str:
    """How the members were chosen, for a table title ("" for reports that do not say)."""
    selection = entry.get("selection")
    if not selection:
        return ""
    if selection.get("method") == "greedy":
        return (f", greedy selection from the best {selection['pool_size']} trials, in order "
                f"{', '.join(str(n) for n in selection['order'])}")
    return ", the best by CV"


def write_run_report(run_dir: Path) -> Path | None:
    """Write RUN/report.html and print its absolute path; a failure is a warning only.

    Called at the end of ``run`` and ``ensemble``: the run's results are already saved, so
    a report that cannot be written must not turn a finished run into an error.
    """
    from reports.html import write_report

    try:
        path = write_report(run_dir)
    except Exception as exc:  # any bug in rendering: the run itself is saved; say how to retry
        err.print(f"[yellow]could not write the HTML report ({type(exc).__name__}: "
                  f"{escape(str(exc))}); retry with: python -m search report {run_dir}")
        return None
    stdout.print(f"report: {path}")
    return path


def print_check(result: CheckReport) -> None:
    """Print what ``check`` found and did: repairs, problems (each with its absolute path),
    notes, then one summary line (the exit code follows from it)."""
    for r in result.repairs:
        label = "repaired" if r.done else "would repair"
        stdout.print(f"[green]{label}:[/] {r.action} {escape(str(r.path))}  ({escape(r.why)})")
    for f in result.problems:
        stdout.print(f"[red]problem:[/] {escape(str(f.path))}: {escape(f.what)}")
    for f in result.notes:
        stdout.print(f"[dim]note:[/] {escape(str(f.path))}: {escape(f.what)}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items()))
    trials = f"{sum(result.counts.values())} trials ({counts or 'none'})"
    pending = sum(not r.done for r in result.repairs)
    made = len(result.repairs) - pending
    parts = [f"[red bold]{len(result.problems)} problem(s) left[/]" if result.problems else "",
             f"[yellow bold]{pending} repair(s) to make[/] (dry run: nothing changed; run "
             "without --dry-run to make them)" if pending else "",
             f"{made} repair(s) made" if made else ""]
    head = "; ".join(p for p in parts if p) if not result.clean else \
        "; ".join(["[green bold]clean[/]", *(p for p in parts if p)])
    stdout.print(f"{head}: {escape(str(result.root))}: {trials}")


def run_epilogue(run_dir: Path) -> None:
    """What ``run`` prints last: the answer first, then where the report and the run are."""
    print_answer(run_dir)
    write_run_report(run_dir)
    stdout.print(f"run directory: {run_dir}")


@click.command()
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the HTML (default: RUN/report.html, or DIR/index.html).")
def report(path: Path, output: Path | None) -> None:
    """Write a self-contained HTML report of the run PATH, or an index of the runs under PATH.

    The file opens offline in any browser (plotly.js is embedded; no server, no network).
    For a directory of runs, each run's report is (re)written where missing or out of date.
    """
    from reports.html import write_index, write_report

    if RunStore(path).exists():
        stdout.print(f"report: {write_report(path, output)}")
        return
    if not list_runs(path):
        raise UsageError(f"{path} is neither a run directory (no run.json) nor a directory "
                         "of runs; runs live under experiments/ by default: see "
                         "`python -m search list`")
    index, written = write_index(path, output)
    for run_report in written:
        stdout.print(f"run report: {run_report}")
    stdout.print(f"index: {index}")
