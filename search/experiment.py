"""The ensemble API: a stored experiment in, a model that predicts raw inputs out.

    from search import load_experiment
    exp = load_experiment("experiments/<run>")
    model = exp.ensemble(top=5)            # up to 5 greedily selected fold members +
                                           # Nelder-Mead weights cross-fitted on OOF, shrunk
    model.predict(x_new)                   # raw inputs in, ensemble predictions out
    model.save("final/"); EnsembleModel.load("final/")
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.ensembling import (
    DEFAULT_POOL,
    OBJECTIVES,
    calibrated,
    fit_method,
    fold_groups,
    member_temperatures,
    select_trials,
)
from search.errors import EnsembleError, StoreError
from search.members import KerasMember, MemberKind, fold_member, read_refit, refit_member
from search.store import RunStore, TrialRecord, write_json

__all__ = ["EnsembleModel", "Experiment", "load_experiment"]

MANIFEST = "ensemble_model.json"


@dataclass
class EnsembleModel:
    """Keras members and their weights; ``predict`` takes the same raw inputs as the space's
    training data (each member applies its own fitted preprocessors)."""

    members: list[KerasMember]
    weights: np.ndarray
    method: str
    task: str
    info: dict[str, Any]
    temperatures: list[float] | None = None
    """Per member: its probabilities' temperature (classification; ``None``: all 1)."""

    def predict(self, x: Any, *, batch_size: int = 256) -> np.ndarray:
        """Weighted sum of the members' (temperature-scaled) predictions, ``(n, outputs)``."""
        total: np.ndarray | None = None
        for member, w, t in zip(self.members, self.weights, self._temperatures(), strict=True):
            if w == 0:
                continue  # a zero weight needs no model loaded
            part = w * calibrated([member.predict(x, batch_size=batch_size)], [t])[0]
            total = part if total is None else total + part
        assert total is not None, "weights sum to 1, so one is positive"
        return total

    def _temperatures(self) -> list[float]:
        return list(self.temperatures or [1.0] * len(self.members))

    def save(self, path: str | Path) -> Path:
        """Copy the members' ``.keras`` (and preprocessor) files into ``path`` with a manifest.

        The files load with plain ``keras.models.load_model``; :meth:`load` restores this
        object.
        """
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        entries = []
        for member, w, t in zip(self.members, self.weights, self._temperatures(), strict=True):
            mdir = root / f"{member.kind}_{member.trial:04d}"
            if mdir.exists():
                shutil.rmtree(mdir)
            mdir.mkdir()
            files, pres = [], []
            for i, (mf, pf) in enumerate(zip(member.model_files, member.pre_files, strict=True)):
                shutil.copy2(mf, mdir / f"model_{i}.keras")
                files.append(f"{mdir.name}/model_{i}.keras")
                if pf is not None:
                    shutil.copy2(pf, mdir / f"model_{i}.pre.joblib")
                pres.append(f"{mdir.name}/model_{i}.pre.joblib" if pf is not None else None)
            entries.append({"trial": member.trial, "kind": member.kind, "weight": float(w),
                            "temperature": float(t), "models": files, "preprocessors": pres})
        write_json(root / MANIFEST, {"method": self.method, "task": self.task,
                                     "members": entries, "info": self.info})
        return root

    @classmethod
    def load(cls, path: str | Path) -> EnsembleModel:
        """Load an ensemble written by :meth:`save`."""
        root = Path(path)
        manifest = root / MANIFEST
        if not manifest.is_file():
            raise StoreError(f"{root} holds no saved ensemble ({MANIFEST} is missing)")
        data = json.loads(manifest.read_text())
        members = [
            KerasMember(e["trial"], e["kind"], [root / f for f in e["models"]],
                        [root / p if p else None for p in e["preprocessors"]],
                        task=data["task"])
            for e in data["members"]
        ]
        weights = np.array([e["weight"] for e in data["members"]], dtype=np.float64)
        temps = [float(e.get("temperature", 1.0)) for e in data["members"]]
        return cls(members, weights, data["method"], data["task"], data.get("info", {}),
                   temps)


class Experiment:
    """A stored run, read-only: its trials, OOF predictions and members."""

    def __init__(self, path: str | Path) -> None:
        self.store = RunStore(path).require()
        self.run = self.store.read_run()

    @property
    def task(self) -> str:
        return str(self.run["task"])

    @property
    def metric(self) -> str:
        return str(self.run["metric"])

    def trials(self) -> list[TrialRecord]:
        return self.store.trials()

    def ranked(self) -> list[TrialRecord]:
        """Completed trials, best first."""
        return self.store.ranked(self.run["direction"])

    def members(self, top: int = 5, *, kind: MemberKind = "folds", select: str = "greedy",
                pool: int = DEFAULT_POOL, objective: str | None = None) -> list[KerasMember]:
        """Keras members of the trials ``select_trials`` chooses (at most ``top``; refit
        members dropped by the guard are skipped): the same as ``ensemble_run``'s."""
        records = select_trials(self.store, top=top, kind=kind, select=select, pool=pool,
                                objective=objective).records
        if kind == "folds":
            return [fold_member(self.store, r) for r in records]
        out = []
        for r in records:
            refit = read_refit(self.store, r.number)
            if refit is not None and refit.status == "ok":
                out.append(refit_member(self.store, r.number))
        if len(out) < 2:
            raise EnsembleError(
                f"fewer than 2 refit members among the top {top}; run `python -m search "
                f"retrain {self.store.root} --top {top}` first"
            )
        return out

    def ensemble(self, top: int = 5, *, method: str = "nelder-mead",
                 members: MemberKind = "folds", objective: str | None = None,
                 random_state: int = 0, select: str = "greedy",
                 pool: int = DEFAULT_POOL) -> EnsembleModel:
        """Fit ``method``'s weights on the members' OOF predictions; return the model.

        Members and weights are those ``ensemble_run`` writes to ensemble.json with the same
        arguments: selected by ``select_trials``, cross-fitted over the run's folds and shrunk
        (Nelder-Mead, greedy).
        """
        objective = objective or OBJECTIVES[self.metric]
        chosen = self.members(top, kind=members, select=select, pool=pool, objective=objective)
        oof = [self.store.load_oof(m.trial) for m in chosen]
        y = self.store.load_array("y_train.npy")
        temps = member_temperatures(oof, y, self.task)
        est = fit_method(method, calibrated(oof, temps), y, objective=objective,
                         metric=self.metric, groups=fold_groups(self.store),
                         random_state=random_state)
        return EnsembleModel(chosen, np.asarray(est.weights_, dtype=np.float64), method,
                             self.task, {"run": self.run["name"], "objective": objective,
                                         "members": members, "top": top, "select": select,
                                         "pool": pool, "shrinkage": float(est.shrinkage_)},
                             temps)


def load_experiment(path: str | Path) -> Experiment:
    """Open a run directory (``experiments/<run>``) for ensembling and prediction."""
    return Experiment(path)
