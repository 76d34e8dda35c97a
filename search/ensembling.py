"""Retrain and ensemble the top trials of a run, reading only the store.

Weights are fitted on the members' out-of-fold predictions only (every trial of a run used
the same folds, so their OOF rows are aligned and leakage-free); test predictions are used
for scoring, never for fitting. ``ensemble.json`` holds, per member kind (``folds`` and
``refit``), the members with their CV and test scores, each method's weights and scores, and
each member's leave-one-out effect on the Nelder-Mead ensemble.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ensembles import (
    NAMED_LOSSES,
    AverageEnsemble,
    BaseEnsemble,
    BestSingle,
    GreedyEnsemble,
    NelderMeadEnsemble,
)
from search.errors import EnsembleError, UsageError
from search.members import MemberKind, RefitResult, member_dir, read_refit, refit_trial
from search.metrics import Metric, get_metric
from search.store import RunStore, TrialRecord, write_json

METHODS = ("nelder-mead", "greedy", "average", "best")
KINDS: tuple[MemberKind, ...] = ("folds", "refit")

#: The default objective each metric's ensemble weights minimise: the task's loss where the
#: metric itself is not a smooth loss (accuracy, auc are step functions of the weights).
OBJECTIVES = {"mae": "mae", "mse": "mse", "rmse": "rmse", "r2": "mse", "accuracy": "log_loss",
              "log_loss": "log_loss", "auc": "log_loss"}

__all__ = ["KINDS", "METHODS", "OBJECTIVES", "ensemble_run", "make_ensemble", "retrain",
           "top_trials"]


def make_ensemble(method: str, *, objective: str, metric: str | None = None,
                  random_state: int = 0, restarts: int = 10) -> BaseEnsemble:
    """An unfitted ensemble estimator by CLI name.

    ``best`` picks its member by the run's ``metric`` where the ensembles package knows it
    (so "best single" is the member a user would call best), else by ``objective``.
    """
    makers: dict[str, Callable[[], BaseEnsemble]] = {
        "nelder-mead": lambda: NelderMeadEnsemble(loss=objective, restarts=restarts,
                                                  random_state=random_state),
        "greedy": lambda: GreedyEnsemble(loss=objective),
        "average": lambda: AverageEnsemble(loss=objective),
        "best": lambda: BestSingle(loss=metric if metric in NAMED_LOSSES else objective),
    }
    if method not in makers:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    return makers[method]()


def top_trials(store: RunStore, top: int) -> list[TrialRecord]:
    """The ``top`` best completed trials (failed/pruned excluded, ties by trial number)."""
    if top < 2:
        raise UsageError(f"--top must be at least 2 (an ensemble needs 2 members); got {top}")
    ranked = store.ranked(store.read_run()["direction"])
    if len(ranked) < 2:
        raise EnsembleError(
            f"an ensemble needs at least 2 completed trials; {store.root.name} has {len(ranked)}"
        )
    return ranked[:top]


def retrain(run_dir: str | Path, *, top: int = 5, seeds: int = 3, guard_factor: float = 2.0,
            data_dir: str | None = None, threads: int = 0,
            on_member: Callable[[RefitResult], None] | None = None) -> list[RefitResult]:
    """Refit the top trials on all training rows (refit members), ``seeds`` seeds each."""
    from search.runner import open_run
    from search.tf_setup import configure_threads, prefer_backend

    store = RunStore(run_dir).require()
    prefer_backend(store.read_run()["settings"].get("keras_backend"))  # the run's, if free
    configure_threads(threads)
    records = top_trials(store, top)
    space, data = open_run(store, data_dir=data_dir)
    seed = int(store.read_run()["settings"]["seed"])
    results = []
    for record in records:
        result = refit_trial(space, data, store, record, seeds=seeds, run_seed=seed,
                             guard_factor=guard_factor)
        results.append(result)
        if on_member is not None:
            on_member(result)
    return results


def _y_test(store: RunStore) -> np.ndarray | None:
    path = store.root / "y_test.npy"
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _score(metric: Metric, task: str, y: np.ndarray | None, pred: np.ndarray | None
           ) -> float | None:
    if y is None or pred is None:
        return None
    return float(metric(y, pred, task))  # type: ignore[arg-type]


def _test_pred(store: RunStore, number: int, kind: MemberKind) -> np.ndarray | None:
    path = (store.trial_dir(number) / "test.npy" if kind == "folds"
            else member_dir(store, number) / "test.npy")
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _members_of_kind(store: RunStore, records: Sequence[TrialRecord], kind: MemberKind
                     ) -> tuple[list[TrialRecord], list[str]]:
    """Members usable for ``kind`` and notes on those left out (dropped/missing refits)."""
    if kind == "folds":
        return list(records), []
    usable, notes = [], []
    for record in records:
        refit = read_refit(store, record.number)
        if refit is None:
            notes.append(f"trial {record.number}: not refit (run `retrain`)")
        elif refit.status != "ok":
            notes.append(f"trial {record.number}: dropped by the divergence guard: "
                         f"{refit.reason}")
        else:
            usable.append(record)
    return usable, notes


def fit_methods(oof: list[np.ndarray], y: np.ndarray, *, methods: Sequence[str],
                objective: str, metric: str, random_state: int = 0) -> dict[str, BaseEnsemble]:
    """Fit each method's weights on the OOF predictions."""
    return {m: make_ensemble(m, objective=objective, metric=metric,
                             random_state=random_state).fit(oof, y)
            for m in methods}


def _kind_report(store: RunStore, run: dict[str, Any], records: list[TrialRecord],
                 kind: MemberKind, *, methods: Sequence[str], objective: str,
                 random_state: int) -> dict[str, Any]:
    task, metric = run["task"], get_metric(run["metric"])
    y = store.load_array("y_train.npy")
    y_test = _y_test(store)
    members, notes = _members_of_kind(store, records, kind)
    if len(members) < 2:
        return {"members": [], "methods": {}, "notes": [*notes, "fewer than 2 usable members"]}
    oof = [store.load_oof(r.number) for r in members]
    preds = {(r.number, k): _test_pred(store, r.number, k) for r in members for k in KINDS}
    tests = [t for r in members if (t := preds[r.number, kind]) is not None]
    have_test = y_test is not None and len(tests) == len(members)
    fitted = fit_methods(oof, y, methods=methods, objective=objective, metric=metric.name,
                         random_state=random_state)
    member_rows = []
    for r, o in zip(members, oof, strict=True):
        member_rows.append({
            "trial": r.number, "params": r.params, "cv_score": r.score,
            "cv_std": r.score_std, "oof_score": _score(metric, task, y, o),
            "fold_test_score": _score(metric, task, y_test, preds[r.number, "folds"]),
            "refit_test_score": _score(metric, task, y_test, preds[r.number, "refit"]),
        })
    method_rows = {}
    for name, est in fitted.items():
        method_rows[name] = {
            "weights": [float(w) for w in est.weights_],
            "objective_value": float(getattr(est, "loss_", np.nan)),
            "oof_score": _score(metric, task, y, est.predict(oof)),
            "test_score": _score(metric, task, y_test, est.predict(tests)) if have_test
            else None,
        }
    loo = _leave_one_out(oof, y, metric, task, objective, random_state, method_rows)
    for row, effect in zip(member_rows, loo, strict=True):
        row["leave_one_out"] = effect
    return {"members": member_rows, "methods": method_rows, "notes": notes}


def _leave_one_out(oof: list[np.ndarray], y: np.ndarray, metric: Metric, task: str,
                   objective: str, random_state: int,
                   method_rows: dict[str, Any]) -> list[dict[str, float | None]]:
    """OOF score of Nelder-Mead without each member, and how much that member helps.

    ``gain`` is positive when removing the member makes the ensemble worse (it contributes).
    """
    full = method_rows.get("nelder-mead", {}).get("oof_score")
    out: list[dict[str, float | None]] = []
    for i in range(len(oof)):
        rest = oof[:i] + oof[i + 1:]
        if len(rest) < 2:
            score = _score(metric, task, y, rest[0])
        else:
            est = make_ensemble("nelder-mead", objective=objective, random_state=random_state,
                                restarts=3).fit(rest, y)
            score = _score(metric, task, y, est.predict(rest))
        gain = None
        if full is not None and score is not None:
            gain = (score - full) if metric.direction == "minimize" else (full - score)
        out.append({"oof_score_without": score, "gain": gain})
    return out


def ensemble_run(run_dir: str | Path, *, top: int = 5, kinds: Sequence[MemberKind] = ("folds",),
                 methods: Sequence[str] = METHODS, objective: str | None = None,
                 random_state: int = 0) -> dict[str, Any]:
    """Fit every method on the top trials' OOF predictions, per member kind; write ensemble.json.

    Returns the ensemble.json content. Kinds not asked for this time keep their earlier
    entry, so folds and refit results stand side by side.
    """
    for m in methods:
        if m not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}; got {m!r}")
    for k in kinds:
        if k not in KINDS:
            raise UsageError(f"--members must be folds or refit; got {k!r}")
    store = RunStore(run_dir).require()
    run = store.read_run()
    objective = objective or OBJECTIVES[run["metric"]]
    records = top_trials(store, top)
    path = store.root / "ensemble.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if report.get("top") != top or report.get("objective") != objective:
        report = {}
    report.update({"run": run["name"], "task": run["task"], "metric": run["metric"],
                   "direction": run["direction"], "objective": objective, "top": top,
                   "fitted_on": "out-of-fold predictions of the training rows",
                   "updated": time.time()})
    report.setdefault("kinds", {})
    for kind in kinds:
        report["kinds"][kind] = _kind_report(store, run, records, kind, methods=methods,
                                             objective=objective, random_state=random_state)
    write_json(path, report)
    return report
