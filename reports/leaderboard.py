"""Leaderboard rows and a run summary, read from the store only (never from a backend)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.store import RunStore, TrialRecord

__all__ = ["Row", "RunSummary", "leaderboard", "summarize"]


@dataclass(frozen=True)
class Row:
    """One trial on the leaderboard; ``rank`` is None for trials that did not complete."""

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


@dataclass(frozen=True)
class RunSummary:
    """Headline facts of a run."""

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


def _row(rank: int | None, t: TrialRecord) -> Row:
    return Row(rank=rank, number=t.number, status=t.status, score=t.score,
               score_std=t.score_std, fold_scores=tuple(t.fold_scores),
               best_epochs=tuple(f.best_epoch for f in t.folds), params=dict(t.params),
               seconds=t.seconds, is_default=t.is_default, error=t.error)


def leaderboard(run_dir: str | Path, *, top: int | None = None,
                include_unfinished: bool = False) -> list[Row]:
    """Completed trials best first (ties by trial number), then, if asked, the others."""
    store = RunStore(run_dir).require()
    direction = store.read_run()["direction"]
    ranked = store.ranked(direction)
    rows = [_row(i + 1, t) for i, t in enumerate(ranked)]
    if top is not None:
        rows = rows[:top]
    if include_unfinished:
        done = {t.number for t in ranked}
        rows += [_row(None, t) for t in store.trials() if t.number not in done]
    return rows


def summarize(run_dir: str | Path) -> RunSummary:
    """The run's settings, trial counts by status, best trial and default-point trial."""
    store = RunStore(run_dir).require()
    run = store.read_run()
    trials = store.trials()
    board = leaderboard(run_dir)
    default = next((r for r in board if r.is_default), None)
    if default is None:
        d = next((t for t in trials if t.is_default), None)
        default = _row(None, d) if d else None
    settings = run["settings"]
    return RunSummary(
        name=run["name"], root=store.root, space=run["space"]["path"], task=run["task"],
        metric=run["metric"], direction=run["direction"], folds=settings["folds"],
        seed=settings["seed"], trials_requested=settings["trials"],
        counts=dict(Counter(t.status for t in trials)), best=board[0] if board else None,
        default=default, created=run["created"], settings=settings,
        versions=run.get("versions", {}),
    )
