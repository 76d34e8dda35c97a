"""The answer first: the final ensemble beside the best single, default point and reference.

A reader's first question about a run is "how good is the result, and is it better than
what I had?". These rows answer it in one table: each contender's CV score (what chose
it), its test score (never used to choose anything) and the gap between them (how much the
CV figure flattered it). Everything is read from the store: ``ensemble.json`` for the
ensembles, ``trials/<id>/test.npy`` + ``y_test.npy`` to score single trials on the test set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reports.leaderboard import Row, leaderboard
from search.metrics import get_metric
from search.store import RunStore, TrialRecord

__all__ = ["METHOD_LABELS", "Answer", "AnswerRow", "answer", "read_ensemble", "test_score"]

#: How each ensemble method of ``ensemble.json`` is named to a reader.
METHOD_LABELS = {"nelder-mead": "Nelder-Mead weights", "greedy": "greedy selection",
                 "average": "equal average", "best": "best single (by OOF)"}

_KIND_NAMES = {"folds": "fold", "refit": "refit"}

#: The ensemble ``search`` hands out by default (``load_experiment(...).ensemble()``).
FINAL_METHOD = "nelder-mead"


@dataclass(frozen=True)
class AnswerRow:
    """One contender: its CV score, test score, and where it comes from.

    ``cv`` of an ensemble is the score of its out-of-fold predictions with weights fitted on
    those same predictions: slightly optimistic, which the gap to ``test`` shows.
    """

    label: str
    kind: str  # "ensemble", "single", "default" or "reference"
    cv: float | None
    test: float | None
    trial: int | None = None
    note: str = ""

    @property
    def gap(self) -> float | None:
        """test − CV (same units as the metric); None unless both are known."""
        if self.cv is None or self.test is None:
            return None
        gap = self.test - self.cv
        # float32 test predictions: a difference below their precision is no difference
        return 0.0 if abs(gap) <= 1e-6 * max(1.0, abs(self.cv), abs(self.test)) else gap


@dataclass(frozen=True)
class Answer:
    """The answer block: rows best-known first, and what could not be shown and why."""

    metric: str
    direction: str
    rows: tuple[AnswerRow, ...]
    final: AnswerRow | None
    notes: tuple[str, ...]

    def row(self, kind: str) -> AnswerRow | None:
        """The first row of ``kind`` (e.g. "default"), or None."""
        return next((r for r in self.rows if r.kind == kind), None)

    def headline(self) -> str:
        """One sentence: the final test score against the best single, default and reference."""
        final = self.final
        if final is None or final.test is None:
            best = self.row("single")
            if best is None:
                return "no completed trial yet"
            return (f"no ensemble yet; best single trial {best.trial}: CV {self.metric} "
                    f"{_g(best.cv)}, test {_g(best.test)}")
        parts = [f"{final.label}: test {self.metric} {_g(final.test)}"]
        for kind, name in (("single", "best single"), ("default", "default point"),
                           ("reference", "reference")):
            other = self.row(kind)
            if other is not None and other.test is not None:
                parts.append(f"{name} {_g(other.test)} ({self._verdict(final.test, other.test)})")
        return "; ".join(parts)

    def _verdict(self, mine: float, theirs: float) -> str:
        if mine == theirs:
            return "tie"
        better = mine < theirs if self.direction == "minimize" else mine > theirs
        return f"{'better' if better else 'worse'} by {_g(abs(mine - theirs), 3)}"


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def read_ensemble(run_dir: str | Path) -> dict[str, Any] | None:
    """``ensemble.json`` as written by ``search.ensembling``, or None if the run has none."""
    path = Path(run_dir) / "ensemble.json"
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data


def test_score(store: RunStore, run: dict[str, Any], number: int) -> float | None:
    """A trial's test score: its fold models' mean test prediction against ``y_test.npy``.

    None when the run kept no test predictions (``predict_test`` off) or has no test set.
    """
    y_path, p_path = store.root / "y_test.npy", store.trial_dir(number) / "test.npy"
    if not (y_path.is_file() and p_path.is_file()):
        return None
    pred = np.load(p_path, allow_pickle=False)
    if not np.all(np.isfinite(pred)):
        return None
    y = np.load(y_path, allow_pickle=False)
    return float(get_metric(run["metric"])(y, pred, run["task"]))


def _final_kind(ens: dict[str, Any]) -> str | None:
    """Fold members when they were ensembled (the default), else refit members."""
    kinds = ens.get("kinds", {})
    for kind in ("folds", "refit"):
        if kinds.get(kind, {}).get("methods"):
            return kind
    return None


def _ensemble_rows(ens: dict[str, Any]) -> tuple[list[AnswerRow], list[str]]:
    rows: list[AnswerRow] = []
    notes: list[str] = []
    final_kind = _final_kind(ens)
    if final_kind is None:
        return [], ["ensemble.json has no fitted ensemble (fewer than 2 usable members)"]
    kinds = ens["kinds"]
    for kind in ("folds", "refit"):
        methods = kinds.get(kind, {}).get("methods", {})
        members = kinds.get(kind, {}).get("members", [])
        names = [FINAL_METHOD, "greedy", "average"] if kind == final_kind else [FINAL_METHOD]
        for name in names:
            m = methods.get(name)
            if m is None:
                continue
            label = f"{'final ensemble: ' if kind == final_kind and name == FINAL_METHOD else ''}"
            label += (f"{METHOD_LABELS.get(name, name)}, {len(members)} "
                      f"{_KIND_NAMES.get(kind, kind)} members")
            rows.append(AnswerRow(label=label, kind="ensemble", cv=m.get("oof_score"),
                                  test=m.get("test_score"), note=_weights_note(m)))
    return rows, notes


def _weights_note(method: dict[str, Any]) -> str:
    """Where the CV figure comes from, and how far cross-fitting shrank the weights."""
    note = "CV: out-of-fold predictions the weights were fitted on"
    shrinkage = method.get("shrinkage")  # absent before cross-fitting, None for the average
    if shrinkage is not None:
        note += f"; shrinkage {shrinkage:.2f} (cross-fitted; 1: equal weights)"
    return note


def answer(run_dir: str | Path, *, trials: list[TrialRecord] | None = None,
           board: list[Row] | None = None) -> Answer:
    """The answer block of a run (see the module docstring); works with no ensemble yet."""
    store = RunStore(run_dir).require()
    run = store.read_run()
    board = leaderboard(run_dir, trials=trials) if board is None else board
    rows: list[AnswerRow] = []
    notes: list[str] = []
    ens = read_ensemble(store.root)
    if ens is None:
        notes.append(f"no ensemble yet: python -m search ensemble {store.root}")
    else:
        e_rows, e_notes = _ensemble_rows(ens)
        rows += e_rows
        notes += e_notes
    if board:
        best = board[0]
        rows.append(AnswerRow(label=f"best single trial ({best.number})", kind="single",
                              cv=best.score, test=test_score(store, run, best.number),
                              trial=best.number, note="CV: mean over folds"))
    else:
        notes.append("no completed trial")
    default = next((r for r in board if r.is_default), None)
    if default is None:
        records = store.trials() if trials is None else trials
        d = next((t for t in records if t.is_default), None)
        if d is not None:
            notes.append(f"default point (trial {d.number}) {d.status}: "
                         f"{(d.error or '').splitlines()[0] if d.error else 'no score'}")
    else:
        rows.append(AnswerRow(label=f"default point (trial {default.number})", kind="default",
                              cv=default.score, test=test_score(store, run, default.number),
                              trial=default.number, note="the space's defaults"))
    ref = run.get("reference")
    if ref:
        rows.append(AnswerRow(label="reference", kind="reference", cv=ref.get("cv"),
                              test=ref.get("test"), note=str(ref.get("source", ""))))
    final = next((r for r in rows if r.kind == "ensemble"), None)
    return Answer(metric=run["metric"], direction=run["direction"], rows=tuple(rows),
                  final=final, notes=tuple(notes))
