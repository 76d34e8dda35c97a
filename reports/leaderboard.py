"""Leaderboard rows and a run summary, read from the store only (never from a backend).

Everything here is plain data (frozen dataclasses of numbers and strings), so the terminal
and the HTML report show the same figures and the functions can be tested on a synthetic
store without Keras.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.store import RunStore, TrialRecord

__all__ = ["Row", "RunSummary", "first_line", "leaderboard", "search_options", "summarize"]


@dataclass(frozen=True)
class Row:
    """One trial on the leaderboard; ``rank`` is None for trials that did not complete.

    Ties share a rank (competition ranking: 1, 1, 3) and are listed by trial number, so
    two trials with the same CV score are shown as equally good rather than one arbitrarily
    ahead.
    """

    rank: int | None
    number: int
    status: str
    score: float | None
    score_std: float | None
    fold_scores: tuple[float, ...]
    best_epochs: tuple[int, ...]
    params: dict[str, Any]
    seconds: float | None
    is_default: bool
    error: str | None
    epochs_run: tuple[int, ...] = ()
    backend_id: str | None = None

    @property
    def reason(self) -> str:
        """First line of the error (what a table cell can hold); '' when there is none."""
        return first_line(self.error)


@dataclass(frozen=True)
class RunSummary:
    """Headline facts of a run (the report's header and ``show``'s first lines)."""

    name: str
    root: Path
    space: str
    task: str
    metric: str
    direction: str
    folds: int
    seed: int
    trials_requested: int
    counts: dict[str, int]
    best: Row | None
    default: Row | None
    created: float
    settings: dict[str, Any]
    versions: dict[str, str]
    space_sha256: str = ""
    space_doc: str = ""
    backend: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] | None = None
    wall_seconds: float | None = None
    sessions: int = 0


def first_line(text: str | None) -> str:
    """The first non-empty line of ``text`` ('' for None): tracebacks stay out of tables."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def search_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The backend's own options (sampler, pruner, algorithm, scheduler, ...), flattened.

    Read generically from every nested dict of the settings (``options``,
    ``backend_options``, ...) rather than from names one backend uses, so a new backend's
    options show up without touching the reports. ``None`` values (not set) are left out.
    """
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update({k: v for k, v in value.items() if v is not None})
        elif key in ("sampler", "pruner", "algorithm", "scheduler") and value is not None:
            out[key] = value
    return out


def _row(rank: int | None, t: TrialRecord) -> Row:
    return Row(rank=rank, number=t.number, status=t.status, score=t.score,
               score_std=t.score_std, fold_scores=tuple(t.fold_scores),
               best_epochs=tuple(f.best_epoch for f in t.folds), params=dict(t.params),
               seconds=t.seconds, is_default=t.is_default, error=t.error,
               epochs_run=tuple(f.epochs_run for f in t.folds), backend_id=t.backend_id)


def rank_rows(ranked: list[TrialRecord]) -> list[Row]:
    """Rows of completed trials already sorted best first, with competition ranks."""
    rows: list[Row] = []
    for i, t in enumerate(ranked):
        tied = rows and rows[-1].score == t.score
        rows.append(_row(rows[-1].rank if tied else i + 1, t))
    return rows


def leaderboard(run_dir: str | Path, *, top: int | None = None,
                include_unfinished: bool = False,
                trials: list[TrialRecord] | None = None) -> list[Row]:
    """Completed trials best first (ties by trial number), then, if asked, the others.

    ``trials``: records already read (a report reads every trial.json once).
    """
    store = RunStore(run_dir).require()
    direction = store.read_run()["direction"]
    trials = store.trials() if trials is None else trials
    ranked = store.ranked(direction, trials)
    rows = rank_rows(ranked)
    if top is not None:
        rows = rows[:top]
    if include_unfinished:
        done = {t.number for t in ranked}
        rows += [_row(None, t) for t in trials if t.number not in done]
    return rows


def _wall_seconds(run: dict[str, Any]) -> float | None:
    """Sum of the sessions' durations (run + each resume); None if none has finished."""
    spans = [float(i["finished"]) - float(i["started"]) for i in run.get("invocations", [])
             if i.get("finished") is not None and i.get("started") is not None]
    return sum(spans) if spans else None


def summarize(run_dir: str | Path, *, trials: list[TrialRecord] | None = None) -> RunSummary:
    """The run's settings, trial counts by status, best trial and default-point trial."""
    store = RunStore(run_dir).require()
    run = store.read_run()
    trials = store.trials() if trials is None else trials
    board = leaderboard(run_dir, trials=trials)
    default = next((r for r in board if r.is_default), None)
    if default is None:
        d = next((t for t in trials if t.is_default), None)
        default = _row(None, d) if d else None
    settings = run["settings"]
    space = run.get("space", {})
    return RunSummary(
        name=run["name"], root=store.root, space=space["path"], task=run["task"],
        metric=run["metric"], direction=run["direction"], folds=settings["folds"],
        seed=settings["seed"], trials_requested=settings["trials"],
        counts=dict(Counter(t.status for t in trials)), best=board[0] if board else None,
        default=default, created=run["created"], settings=settings,
        versions=run.get("versions", {}), space_sha256=space.get("sha256", ""),
        space_doc=space.get("doc", ""), backend=str(settings.get("backend", "")),
        options=search_options(settings), reference=run.get("reference"),
        wall_seconds=_wall_seconds(run), sessions=len(run.get("invocations", [])),
    )
