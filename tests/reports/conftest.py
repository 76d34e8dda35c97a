"""Synthetic run directories for the report tests, written with the store's own functions.

Fast (no Keras, no search): run.json, trial records with per-fold history, OOF and test
predictions, and a hand-made ensemble.json in the layout ``search.ensembling`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.store import FoldRecord, RunStore, TrialRecord, write_json

SPACE = [
    {"name": "layers", "kind": "int", "default": 1, "low": 1, "high": 2, "step": None,
     "sampling": "linear"},
    {"name": "units_0", "kind": "int", "default": 8, "low": 4, "high": 16, "step": 4,
     "sampling": "linear"},
    {"name": "activation", "kind": "choice", "default": "relu",
     "values": ["relu", "tanh", "<script>alert(1)</script>"]},
    {"name": "units_1", "kind": "int", "default": 8, "low": 4, "high": 16, "step": 4,
     "sampling": "linear"},
    {"name": "lr", "kind": "float", "default": 0.01, "low": 0.001, "high": 0.1, "step": None,
     "sampling": "log"},
]
N_TRAIN, N_TEST, FOLDS = 40, 20, 2


def _params(i: int) -> dict[str, Any]:
    layers = 1 + i % 2
    p: dict[str, Any] = {"layers": layers, "units_0": 4 + 4 * (i % 4),
                         "activation": ["relu", "tanh"][i % 2 if i else 0],
                         "lr": 0.01 * (1.5 ** (i % 5))}
    if layers == 2:
        p["units_1"] = 4 + 4 * (i % 3)
    return p


def _record(number: int, score: float | None, status: str, params: dict[str, Any],
            error: str | None = None, n_folds: int = FOLDS) -> TrialRecord:
    folds = []
    if score is not None or status != "failed":
        base = score if score is not None else 2.0
        for k in range(n_folds):
            loss = [base + 1.0 / (e + 1) for e in range(4)]
            folds.append(FoldRecord(fold=k, score=base + (0.1 if k else -0.1), best_epoch=3 + k,
                                    epochs_run=4, seed=k, fit_seconds=0.5, seconds=0.6,
                                    history={"loss": loss, "val_loss": [v + 0.2 for v in loss]}))
    return TrialRecord(number=number, status=status, params=params,  # type: ignore[arg-type]
                       score=score if status == "complete" else None,
                       score_std=0.1 if status == "complete" else None, folds=folds,
                       n_folds=FOLDS, seed=number, started=1000.0 + number,
                       finished=1001.0 + number, seconds=1.5 + number, error=error,
                       is_default=number == 0)


def _ensemble_json(members: Sequence[TrialRecord], kinds: Sequence[str]) -> dict[str, Any]:
    n = len(members)
    entry = {
        "members": [{"trial": t.number, "params": t.params, "cv_score": t.score,
                     "cv_std": t.score_std, "oof_score": t.score, "fold_test_score": 1.0 + i,
                     "refit_test_score": 1.2 + i,
                     "leave_one_out": {"oof_score_without": 1.5, "gain": 0.3 - 0.2 * i}}
                    for i, t in enumerate(members)],
        "methods": {
            "nelder-mead": {"weights": [0.7, 0.3] + [0.0] * (n - 2), "objective_value": 0.5,
                            "oof_score": 0.5, "test_score": 0.6},
            "greedy": {"weights": [0.5, 0.5] + [0.0] * (n - 2), "objective_value": 0.55,
                       "oof_score": 0.55, "test_score": 0.65},
            "average": {"weights": [1 / n] * n, "objective_value": 0.7, "oof_score": 0.7,
                        "test_score": 0.8},
            "best": {"weights": [1.0] + [0.0] * (n - 1), "objective_value": 0.9,
                     "oof_score": 0.9, "test_score": 1.0},
        },
        "notes": [],
    }
    return {"run": "synthetic", "task": "regression", "metric": "mae", "direction": "minimize",
            "objective": "mae", "top": n, "fitted_on": "out-of-fold predictions",
            "updated": time.time(), "kinds": {k: entry for k in kinds}}


def build_run(root: Path, *, scores: Sequence[float | None], statuses: Sequence[str] | None = None,
              errors: dict[int, str] | None = None, ensemble: Sequence[str] | None = ("folds",),
              reference: dict[str, Any] | str | None = "omit", name: str = "synthetic",
              direction: str = "minimize", params: dict[int, dict[str, Any]] | None = None,
              settings: dict[str, Any] | None = None) -> Path:
    """A run directory with one trial per score (trial 0 is the default point)."""
    store = RunStore(root)
    rng = np.random.default_rng(0)
    y, y_test = rng.normal(size=N_TRAIN), rng.normal(size=N_TEST)
    run: dict[str, Any] = {
        "name": name, "created": 1_700_000_000.0,
        "space": {"path": "/spaces/synthetic.py", "sha256": "ab" * 32, "name": "synthetic",
                  "doc": "A synthetic space."},
        "task": "regression", "metric": "mae", "direction": direction,
        "settings": settings or {"trials": len(scores), "folds": FOLDS, "seed": 3,
                                 "timeout": None, "backend": "optuna",
                                 "options": {"sampler": "tpe", "pruner": "median",
                                             "storage": None}, "jobs": 1},
        "data": {"n_train": N_TRAIN, "n_test": N_TEST}, "params": SPACE,
        "default_params": _params(0), "versions": {"numpy": np.__version__},
        "invocations": [{"started": 100.0, "finished": 190.0, "trials": len(scores),
                         "argv": [], "outcome": "finished"}],
    }
    if reference != "omit":
        run["reference"] = reference
    store.write_run(run)
    store.save_array("y_train.npy", y.astype(np.float32))
    store.save_array("y_test.npy", y_test.astype(np.float32))
    statuses = statuses or ["complete"] * len(scores)
    records = []
    for i, (score, status) in enumerate(zip(scores, statuses, strict=True)):
        p = (params or {}).get(i, _params(i))
        rec = _record(i, score, status, p, (errors or {}).get(i))
        store.allocate(i)
        store.write_trial(rec)
        records.append(rec)
        if status == "complete":
            store.save_oof(i, (y + rng.normal(scale=0.5, size=N_TRAIN))[:, None])
            # test predictions off by exactly ``score`` in MAE: test score == CV score + 0.0
            store.save_test(i, (y_test + float(score or 0.0))[:, None])
    done = [r for r in records if r.status == "complete"]
    if ensemble and len(done) >= 2:
        ranked = store.ranked(direction, records)[:5]
        write_json(store.root / "ensemble.json", _ensemble_json(ranked, ensemble))
    return store.root


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run(scores=[...], ...)`` → a synthetic run directory under tmp_path."""
    counter = iter(range(1000))

    def make(**kwargs: Any) -> Path:
        root = tmp_path / "runs" / kwargs.get("name", f"run{next(counter)}")
        return build_run(root, **kwargs)

    return make
