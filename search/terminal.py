"""What the terminal shows: the live progress bar, leaderboard tables, ``list`` and ``show``.

Part of the CLI layer (it prints); :mod:`search.cli` registers the commands defined here.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from search.errors import SearchError
from search.events import SearchEvents
from search.store import FoldRecord, TrialRecord, list_runs

stdout = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

__all__ = ["RichEvents", "err", "list_cmd", "run_epilogue", "show", "stdout"]


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def _params(params: dict[str, Any], width: int = 70) -> str:
    text = " ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


class RichEvents(SearchEvents):
    """Live progress: trial n/N, the fold running, the best score so far."""

    def __init__(self) -> None:
        self.metric = "score"
        self.bar = Progress(
            TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
            transient=False,
        )
        self.task: Any = None
        self.folds = 0
        self.best = "-"

    def search_started(self, *, run_dir: Path, total: int, done: int, folds: int,
                       metric: str) -> None:
        self.folds, self.metric = folds, metric
        err.print(f"run directory: {run_dir}")
        self.bar.start()
        self.task = self.bar.add_task("", total=total, completed=done)

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
            self.bar.console.print(f"[yellow]trial {record.number} failed: {record.error}")
        self._describe(f"trial {record.number} {record.status}")

    def progress(self, done: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done)

    def message(self, text: str) -> None:
        self.bar.console.print(f"[yellow]{text}")


    def _describe(self, text: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, description=f"{text} · best {self.metric} {self.best}")

    def stop(self) -> None:
        self.bar.stop()


def _leaderboard_table(run_dir: Path, top: int, *, folds: bool = True) -> Table:
    from reports import leaderboard, summarize

    summary = summarize(run_dir)
    rows = leaderboard(run_dir, top=top)
    n_done = summary.counts.get("complete", 0)
    table = Table(title=f"{summary.name}: best {min(top, n_done)} of {n_done} complete trials "
                        f"({summary.metric}, {summary.direction})")
    table.add_column("#", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(summary.metric, justify="right")
    table.add_column("± std", justify="right")
    if folds:
        table.add_column("folds")
        table.add_column("best epochs")
    table.add_column("params")
    for r in rows:
        cells = [str(r.rank), f"{r.number}{' (default)' if r.is_default else ''}", _fmt(r.score),
                 _fmt(r.score_std, 2)]
        if folds:
            cells += [" ".join(_fmt(s) for s in r.fold_scores),
                      " ".join(str(e) for e in r.best_epochs)]
        table.add_row(*cells, _params(r.params))
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


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--top", type=int, default=10, show_default=True, help="Trials to show.")
def show(run_dir: Path, top: int) -> None:
    """Show a run: settings, best trials with per-fold scores, failures."""
    from reports import leaderboard, summarize

    s = summarize(run_dir)
    stdout.print(f"[bold]{s.name}[/]  {s.root}")
    stdout.print(f"space    {s.space}  ({s.task}, {s.metric} {s.direction})")
    st = s.settings
    opts = " ".join(f"{k}={v}" for k, v in (st.get("options") or {}).items() if v is not None)
    stdout.print(f"search   {st['backend']} {opts} "
              f"folds={s.folds} seed={s.seed} trials={sum(s.counts.values())}/"
              f"{s.trials_requested} ({', '.join(f'{v} {k}' for k, v in s.counts.items())})")
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
        for r in bad:
            table.add_row(str(r.number), r.status, str(len(r.fold_scores)), r.error or "")
        stdout.print(table)


def _ensemble_tables(report: dict[str, Any], kind: str) -> list[Table]:
    entry = report["kinds"].get(kind, {})
    if not entry.get("members"):
        return []
    metric, rows = report["metric"], entry["members"]
    members = Table(title=f"{len(rows)} {kind} members ({metric}; test scores are shown, never "
                          "fitted on)")
    for col in ("trial", f"CV {metric}", f"OOF {metric}", "test: fold models", "test: refit",
                "leave-one-out gain"):
        members.add_column(col, justify="right")
    for m in rows:
        members.add_row(str(m["trial"]), _fmt(m["cv_score"]), _fmt(m["oof_score"]),
                        _fmt(m["fold_test_score"]), _fmt(m["refit_test_score"]),
                        _fmt(m["leave_one_out"]["gain"], 3))
    methods = Table(title=f"ensembles of {kind} members (weights fitted on OOF predictions, "
                          f"objective {report['objective']})")
    for col in ("method", f"OOF {metric}", f"test {metric}", "weights (trial: weight)"):
        methods.add_column(col, justify="right" if col != "weights (trial: weight)" else "left")
    for name, v in entry["methods"].items():
        weights = "  ".join(f"{m['trial']}: {w:.3f}" for m, w in zip(rows, v["weights"],
                                                                    strict=True) if w >= 5e-4)
        methods.add_row(name, _fmt(v["oof_score"]), _fmt(v["test_score"]), weights)
    return [members, methods]


def run_epilogue(run_dir: Path) -> None:
    """What ``run`` prints last, after the leaderboard and the ensembles."""
    stdout.print(f"run directory: {run_dir}")
