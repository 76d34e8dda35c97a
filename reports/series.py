"""The series behind the report's plots, as plain data computed from trial records.

Kept apart from the rendering so that what a plot shows (which trials, which order, what a
running best is) is unit-tested without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reports.leaderboard import Row
from search.store import TrialRecord

__all__ = ["Axis", "Curve", "History", "Parallel", "history", "learning_curves", "parallel"]


@dataclass(frozen=True)
class History:
    """Completed trials in trial order with the running best; other trials by status."""

    trials: tuple[int, ...]
    scores: tuple[float, ...]
    best_so_far: tuple[float, ...]
    default: int | None
    others: dict[str, tuple[int, ...]]  # "pruned"/"failed"/"running" -> trial numbers


def history(trials: Sequence[TrialRecord], direction: str) -> History:
    """Each completed trial's CV score and the best score up to it, in trial-number order."""
    xs: list[int] = []
    ys: list[float] = []
    best: list[float] = []
    others: dict[str, list[int]] = {}
    pick = min if direction == "minimize" else max
    for t in sorted(trials, key=lambda t: t.number):
        if t.status == "complete" and t.score is not None and math.isfinite(t.score):
            xs.append(t.number)
            ys.append(float(t.score))
            best.append(pick(best[-1], ys[-1]) if best else ys[-1])
        elif t.status != "complete":
            others.setdefault(t.status, []).append(t.number)
    default = next((t.number for t in trials if t.is_default), None)
    return History(tuple(xs), tuple(ys), tuple(best), default,
                   {k: tuple(v) for k, v in others.items()})


@dataclass(frozen=True)
class Axis:
    """One parallel-coordinates axis: numeric values, or codes into ``labels``."""

    name: str
    values: tuple[float, ...]
    labels: tuple[str, ...] = ()  # non-empty: categorical, values index into it
    log: bool = False


@dataclass(frozen=True)
class Parallel:
    """Completed trials' parameters (one axis each) and CV scores, in leaderboard order."""

    trials: tuple[int, ...]
    axes: tuple[Axis, ...]
    scores: tuple[float, ...]
    conditional: tuple[str, ...] = ()  # varying, but absent from some trials: no axis


def parallel(rows: Sequence[Row], space: Sequence[dict[str, Any]]) -> Parallel:
    """Axes for the parameters that vary and every completed trial has.

    A conditional parameter (``units_1`` only when ``layers=2``) has no value to draw for
    some trials, and a line cannot skip an axis: it is named in ``conditional`` instead.
    Categorical values (strings, booleans, mixed) become codes into sorted labels; numeric
    parameters traced with log sampling are flagged so the axis can be drawn in log10.
    """
    done = [r for r in rows if r.rank is not None and r.score is not None]
    log_names = {str(p.get("name")) for p in space if p.get("sampling") == "log"}
    names = list(dict.fromkeys(k for r in done for k in r.params))
    axes: list[Axis] = []
    conditional: list[str] = []
    for name in names:
        present = [r.params[name] for r in done if name in r.params]
        if len({repr(v) for v in present}) < 2:
            continue
        if len(present) < len(done):
            conditional.append(name)
            continue
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for v in present)
        if numeric:
            vals = tuple(float(r.params[name]) for r in done)
            axes.append(Axis(name, vals, log=name in log_names and min(present) > 0))
        else:
            labels = tuple(sorted({str(v) for v in present}))
            vals = tuple(float(labels.index(str(r.params[name]))) for r in done)
            axes.append(Axis(name, vals, labels))
    return Parallel(tuple(r.number for r in done), tuple(axes),
                    tuple(float(r.score) for r in done if r.score is not None),
                    tuple(conditional))


@dataclass(frozen=True)
class Curve:
    """Loss per epoch of one fold of one trial (what Keras' History recorded)."""

    trial: int
    fold: int
    best_epoch: int
    series: dict[str, tuple[float, ...]]  # "loss", "val_loss", ...


def learning_curves(trials: Sequence[TrialRecord], numbers: Sequence[int],
                    keys: Sequence[str] = ("loss", "val_loss")) -> list[Curve]:
    """Curves of the given trials' folds (those whose record kept a history), in order."""
    by_number = {t.number: t for t in trials}
    out: list[Curve] = []
    for n in numbers:
        t = by_number.get(n)
        if t is None:
            continue
        for f in t.folds:
            series = {k: tuple(float(v) for v in f.history[k]) for k in keys
                      if f.history.get(k)}
            if series:
                out.append(Curve(n, f.fold, f.best_epoch, series))
    return out
