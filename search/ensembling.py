"""Retrain and ensemble the top trials of a run, reading only the store.

Weights are fitted on the members' out-of-fold predictions only (every trial of a run used
the same folds, so their OOF rows are aligned and leakage-free); test predictions are used
for scoring, never for fitting. ``ensemble.json`` holds, per member kind (``folds`` and
``refit``), the members with their CV and test scores, each method's weights and scores, and
each member's leave-one-out effect on the Nelder-Mead ensemble.

Two guards against fitting the OOF rows too well (issue 12: Nelder-Mead put 0.94 of the weight
on one trial and lost to the equal average out of sample):

* members are *selected* by greedy forward selection (Caruana et al., 2004) from a pool of the
  best ``pool`` trials by CV, at most ``top`` of them (:func:`select_trials`, shared by
  ``retrain`` and the ensemble so that both use the same trials);
* Nelder-Mead and greedy weights are *cross-fitted* over the run's folds and shrunk towards
  the equal average by as much as held-out folds ask for (``BaseEnsemble.fit(groups=...)``).

And one against weighting members by their confidence rather than their knowledge:
classification members are *temperature-scaled* first (:func:`member_temperatures`, one
scalar per member fitted on its OOF rows), so a label-smoothed member is not outweighed by a
worse but sharper one (see :mod:`ensembles.calibration`). The temperatures are stored in
ensemble.json and applied by the ensemble API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from ensembles.calibration import fit_temperature, scale_probabilities
from search.errors import EnsembleError, UsageError
from search.members import MemberKind, RefitResult, member_dir, read_refit, refit_trial
from search.metrics import Metric, get_metric
from search.store import RunStore, TrialRecord, write_json

METHODS = ("nelder-mead", "greedy", "average", "best")
SELECTIONS = ("greedy", "rank")
DEFAULT_POOL = 20
"""Trials (best by CV) greedy selection chooses members from: enough that a trial ranked
below ``--top`` but erring differently can join, few enough that the fold models of the
whole pool can be kept on disk."""

#: Methods whose weights are learned, and so cross-fitted over the folds and shrunk; the
#: average learns nothing and "best" is the single-model baseline, kept as it is.
SHRUNK_METHODS = ("nelder-mead", "greedy")
KINDS: tuple[MemberKind, ...] = ("folds", "refit")

#: The default objective each metric's ensemble weights minimise: the task's loss where the
#: metric itself is not a smooth loss (accuracy, auc are step functions of the weights).
OBJECTIVES = {"mae": "mae", "mse": "mse", "rmse": "rmse", "r2": "mse", "accuracy": "log_loss",
              "log_loss": "log_loss", "auc": "log_loss"}

__all__ = ["DEFAULT_POOL", "KINDS", "METHODS", "OBJECTIVES", "SELECTIONS", "Selection",
           "ensemble_run", "fit_method", "fold_groups", "make_ensemble", "retrain",
           "select_trials", "top_trials"]


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
    return _ranked(store, top)[:top]


def _ranked(store: RunStore, top: int) -> list[TrialRecord]:
    """Every completed trial, best first, after checking an ensemble of ``top`` can be made."""
    if top < 2:
        raise UsageError(f"--top must be at least 2 (an ensemble needs 2 members); got {top}")
    ranked = store.ranked(store.read_run()["direction"])
    if len(ranked) < 2:
        raise EnsembleError(
            f"an ensemble needs at least 2 completed trials; {store.root.name} has {len(ranked)}"
        )
    return ranked


@dataclass(frozen=True)
class Selection:
    """The members chosen for one member kind, and how.

    Attributes:
        records: The chosen trials, in the order they were selected (rank order for
            ``rank``).
        method: ``"greedy"`` or ``"rank"`` (also ``"rank"`` when greedy fell back, see
            ``notes``).
        pool: Candidate trial numbers, best CV first.
        objective: What greedy selection minimised on the OOF predictions.
        loss_curve: Greedy's ensemble loss after each step (empty for rank).
        notes: Why the selection differs from what was asked, if it does.
    """

    records: list[TrialRecord]
    method: str
    pool: list[int]
    objective: str
    loss_curve: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self, top: int) -> dict[str, Any]:
        """What ensemble.json records of it."""
        return {"method": self.method, "max_members": top, "pool_size": len(self.pool),
                "pool": self.pool, "order": [r.number for r in self.records],
                "objective": self.objective, "loss_curve": self.loss_curve}


def _has_fold_models(store: RunStore, record: TrialRecord) -> bool:
    return len(store.model_paths(record.number)) == record.n_folds > 0


def select_trials(store: RunStore, *, top: int, kind: MemberKind = "folds",
                  select: str = "greedy", pool: int = DEFAULT_POOL,
                  objective: str | None = None) -> Selection:
    """The trials to use as members of ``kind``: one function for ``retrain`` and the ensemble.

    ``rank`` takes the ``top`` best trials by CV (the old behaviour). ``greedy`` runs
    Caruana's forward selection with replacement on the OOF predictions of the best ``pool``
    trials by CV (at least ``top``), allowing at most ``top`` distinct members, and keeps
    those selected at its best step: a trial joins only if it lowers the ensemble's OOF loss,
    so near-copies of the best trial stay out and a lower-ranked one that errs differently
    gets in. Fold members need their fold models, so the ``folds`` pool holds only trials
    whose models were kept (the run's ``--keep-models``); with fewer than 2 such trials the
    selection falls back to ``rank`` and says so in ``notes``. Deterministic: the same store
    gives the same selection, which is what lets ``retrain`` refit exactly the trials the
    ensemble will use.

    Raises:
        UsageError: On ``top < 2``, an unknown ``select`` or ``pool < 1``.
        EnsembleError: If the run has fewer than 2 completed trials.
    """
    ranked = _ranked(store, top)
    if select not in SELECTIONS:
        raise UsageError(f"--select must be one of {', '.join(SELECTIONS)}; got {select!r}")
    if pool < 1:
        raise UsageError(f"--pool must be at least 1; got {pool}")
    run = store.read_run()
    objective = objective or OBJECTIVES[run["metric"]]
    if select == "rank":
        return Selection(ranked[:top], "rank", [r.number for r in ranked[:top]], objective)
    size = max(pool, top)
    notes = []
    candidates = ranked
    if kind == "folds":
        candidates = [r for r in ranked if _has_fold_models(store, r)]
        if len(candidates) < 2:
            notes.append(f"fold models are kept for {len(candidates)} of the completed "
                         "trials, too few to select from: members are the best by CV (keep "
                         "more with --keep-models)")
            return Selection(ranked[:top], "rank", [r.number for r in ranked[:top]],
                             objective, notes=notes)
    candidates = candidates[:size]
    y = store.load_array("y_train.npy")
    oof = [store.load_oof(r.number) for r in candidates]
    oof = calibrated(oof, member_temperatures(oof, y, run["task"]))
    selector = GreedyEnsemble(loss=objective, max_members=top, max_iter=max(50, 5 * top))
    selector.fit(oof, y)
    order = [int(i) for i in selector.selection_order_]
    for i in range(len(candidates)):  # an ensemble needs 2 members: add the next best by CV
        if len(order) >= 2:
            break
        if i not in order:
            order.append(i)
    return Selection([candidates[i] for i in order], "greedy",
                     [r.number for r in candidates], objective,
                     [float(v) for v in selector.loss_curve_], notes)


def member_temperatures(oof: Sequence[np.ndarray], y: np.ndarray, task: str) -> list[float]:
    """Each member's temperature, fitted on its OOF rows (1.0 for regression members)."""
    if task not in ("binary", "multiclass"):
        return [1.0] * len(oof)
    return [fit_temperature(o, y) for o in oof]


def calibrated(preds: Sequence[np.ndarray], temperatures: Sequence[float]
               ) -> list[np.ndarray]:
    """The members' predictions at their temperatures, in their own dtype (OOF arrays are
    float32)."""
    return [p if t == 1.0 else scale_probabilities(p, t).astype(p.dtype, copy=False)
            for p, t in zip(preds, temperatures, strict=True)]


def fold_groups(store: RunStore) -> np.ndarray:
    """The fold id of every training row, as ``groups`` for cross-fitting the weights.

    ``folds.npy`` is ``(n_rows,)``; with repeated K-fold it may become ``(R, n_rows)``, whose
    first repeat is the partition the OOF rows of the first repeat came from.
    """
    return np.atleast_2d(store.load_array("folds.npy"))[0]


def fit_method(method: str, oof: Sequence[np.ndarray], y: np.ndarray, *, objective: str,
               metric: str | None = None, groups: np.ndarray | None = None,
               random_state: int = 0, restarts: int = 10) -> BaseEnsemble:
    """One method fitted on the OOF predictions, cross-fitted and shrunk over ``groups`` for
    the methods that learn weights (:data:`SHRUNK_METHODS`)."""
    est = make_ensemble(method, objective=objective, metric=metric, random_state=random_state,
                        restarts=restarts)
    return est.fit(list(oof), y, groups=groups if method in SHRUNK_METHODS else None)


def retrain(run_dir: str | Path, *, top: int = 5, seeds: int = 3, guard_factor: float = 2.0,
            data_dir: str | None = None, threads: int = 0,
            on_member: Callable[[RefitResult], None] | None = None,
            select: str = "greedy", pool: int = DEFAULT_POOL) -> list[RefitResult]:
    """Refit the selected trials on all training rows (refit members), ``seeds`` seeds each.

    The trials are those :func:`select_trials` picks for the ``refit`` kind with the same
    ``top``/``select``/``pool``: the ones ``ensemble_run`` will then use.
    """
    from search.runner import open_run
    from search.tf_setup import configure_threads, prefer_backend

    store = RunStore(run_dir).require()
    prefer_backend(store.read_run()["settings"].get("keras_backend"))  # the run's, if free
    configure_threads(threads)
    records = select_trials(store, top=top, kind="refit", select=select, pool=pool).records
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
                objective: str, metric: str, random_state: int = 0,
                groups: np.ndarray | None = None) -> dict[str, BaseEnsemble]:
    """Fit each method's weights on the OOF predictions (see :func:`fit_method`)."""
    return {m: fit_method(m, oof, y, objective=objective, metric=metric, groups=groups,
                          random_state=random_state)
            for m in methods}


def _shrinkage_row(est: BaseEnsemble) -> dict[str, Any]:
    """What cross-fitting found: nulls for methods fitted without it."""
    grid, losses = est.shrinkage_grid_, est.cv_losses_
    return {
        "shrinkage": float(est.shrinkage_) if est.cv_losses_ is not None else None,
        "cv_loss": est.cv_loss_, "cv_loss_equal": est.cv_loss_equal_,
        "cv_losses": None if grid is None or losses is None else
        {f"{s:g}": float(v) for s, v in zip(grid, losses, strict=True)},
        "unshrunk_weights": [float(w) for w in est.unshrunk_weights_],
    }


def _kind_report(store: RunStore, run: dict[str, Any], selection: Selection,
                 kind: MemberKind, *, methods: Sequence[str], objective: str,
                 random_state: int, top: int) -> dict[str, Any]:
    task, metric = run["task"], get_metric(run["metric"])
    y = store.load_array("y_train.npy")
    y_test = _y_test(store)
    groups = fold_groups(store)
    members, notes = _members_of_kind(store, selection.records, kind)
    notes = [*selection.notes, *notes]
    if len(members) < 2:
        return {"members": [], "methods": {}, "notes": [*notes, "fewer than 2 usable members"],
                "selection": selection.to_json(top)}
    raw = [store.load_oof(r.number) for r in members]
    temperatures = member_temperatures(raw, y, task)
    oof = calibrated(raw, temperatures)
    preds = {(r.number, k): _test_pred(store, r.number, k) for r in members for k in KINDS}
    tests = [t for r in members if (t := preds[r.number, kind]) is not None]
    have_test = y_test is not None and len(tests) == len(members)
    if have_test:
        tests = calibrated(tests, temperatures)
    fitted = fit_methods(oof, y, methods=methods, objective=objective, metric=metric.name,
                         random_state=random_state, groups=groups)
    member_rows = []
    for r, o, temp in zip(members, raw, temperatures, strict=True):
        member_rows.append({
            "trial": r.number, "params": r.params, "cv_score": r.score,
            "cv_std": r.score_std, "oof_score": _score(metric, task, y, o), "temperature": temp,
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
            **_shrinkage_row(est),
        }
    loo = _leave_one_out(oof, y, metric, task, objective, random_state, method_rows, groups)
    for row, effect in zip(member_rows, loo, strict=True):
        row["leave_one_out"] = effect
    return {"members": member_rows, "methods": method_rows, "notes": notes,
            "selection": selection.to_json(top)}


def _leave_one_out(oof: list[np.ndarray], y: np.ndarray, metric: Metric, task: str,
                   objective: str, random_state: int, method_rows: dict[str, Any],
                   groups: np.ndarray | None = None) -> list[dict[str, float | None]]:
    """OOF score of Nelder-Mead without each member, and how much that member helps.

    Fitted like the full ensemble (cross-fitted and shrunk over ``groups``), so that the gain
    compares like with like.

    ``gain`` is positive when removing the member makes the ensemble worse (it contributes).
    """
    full = method_rows.get("nelder-mead", {}).get("oof_score")
    out: list[dict[str, float | None]] = []
    for i in range(len(oof)):
        rest = oof[:i] + oof[i + 1:]
        if len(rest) < 2:
            score = _score(metric, task, y, rest[0])
        else:
            est = fit_method("nelder-mead", rest, y, objective=objective, groups=groups,
                             random_state=random_state, restarts=3)
            score = _score(metric, task, y, est.predict(rest))
        gain = None
        if full is not None and score is not None:
            gain = (score - full) if metric.direction == "minimize" else (full - score)
        out.append({"oof_score_without": score, "gain": gain})
    return out


def ensemble_run(run_dir: str | Path, *, top: int = 5, kinds: Sequence[MemberKind] = ("folds",),
                 methods: Sequence[str] = METHODS, objective: str | None = None,
                 random_state: int = 0, select: str = "greedy",
                 pool: int = DEFAULT_POOL) -> dict[str, Any]:
    """Fit every method on the selected trials' OOF predictions, per member kind; write
    ensemble.json.

    Members come from :func:`select_trials` (at most ``top``; ``select``/``pool`` as there),
    each kind's choice recorded under ``kinds.<kind>.selection``. Nelder-Mead and greedy
    weights are cross-fitted over the run's folds and shrunk; each method records
    ``shrinkage``, ``cv_loss``, ``cv_loss_equal``, ``cv_losses`` and ``unshrunk_weights``.

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
    path = store.root / "ensemble.json"
    report: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if (report.get("top"), report.get("objective"), report.get("select"),
            report.get("pool")) != (top, objective, select, pool):
        report = {}  # other members: earlier kinds' entries no longer stand beside these
    selections = {kind: select_trials(store, top=top, kind=kind, select=select, pool=pool,
                                      objective=objective) for kind in kinds}
    report.update({"run": run["name"], "task": run["task"], "metric": run["metric"],
                   "direction": run["direction"], "objective": objective, "top": top,
                   "select": select, "pool": pool,
                   "fitted_on": "out-of-fold predictions of the training rows",
                   "weights_cross_fitted": "nelder-mead and greedy weights are cross-fitted "
                                           "over the run's folds and shrunk towards the equal "
                                           "average by `shrinkage`",
                   "updated": time.time()})
    report.setdefault("kinds", {})
    for kind in kinds:
        report["kinds"][kind] = _kind_report(store, run, selections[kind], kind,
                                             methods=methods, objective=objective,
                                             random_state=random_state, top=top)
    write_json(path, report)
    return report
