"""The backend seam: who proposes parameters and where trials execute.

A backend is one small class with one method. Everything else — running the folds,
writing the store, keeping the best fold models, telling the UI — lives in
:class:`TrialContext`, shared by every backend, so all of them write the same record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from search.events import SearchEvents
from search.hp import HyperParameters
from search.space import Space, SpaceTrace
from search.store import RunStore, TrialRecord
from search.trial import Dataset, Report, TrialResult, run_trial

__all__ = ["Backend", "TrialContext"]


@dataclass
class TrialContext:
    """Everything a backend needs to execute a trial of this run."""

    space: Space
    trace: SpaceTrace
    data: Dataset
    store: RunStore
    fold_of: np.ndarray
    seed: int
    keep_models: int = 5
    predict_test: bool = True
    tensorboard: bool = False
    events: SearchEvents = field(default_factory=SearchEvents)

    def execute(
        self, number: int, hp: HyperParameters, *, report: Report | None = None,
        is_default: bool = False, backend: str = "optuna", worker: int = 0,
    ) -> TrialResult:
        """Run trial ``number`` with ``hp``; afterwards keep only the best trials' models.

        Raises whatever :func:`run_trial` raises (TrialPruned, TrialFailed); the store and
        the UI are up to date either way.
        """
        self.events.trial_started(number)
        try:
            return run_trial(
                self.space, hp, self.data, fold_of=self.fold_of, number=number, seed=self.seed,
                store=self.store, report=report, on_fold=self.events.fold_finished,
                save_models=self.keep_models > 0, predict_test=self.predict_test,
                is_default=is_default, backend=backend, tensorboard=self.tensorboard,
                worker=worker,
            )
        finally:
            trials = self.store.trials()  # read once for pruning, the record and the best
            self.store.prune_models(self.keep_models, self.space.direction, trials)
            record = next((t for t in trials if t.number == number), None) or TrialRecord(
                number=number, status="failed", params=dict(hp.values))
            ranked = self.store.ranked(self.space.direction, trials)
            self.events.trial_finished(record, ranked[0] if ranked else None)


class Backend(ABC):
    """Proposes parameters and runs trials until the run has ``n_trials`` finished trials."""

    name: ClassVar[str]

    @abstractmethod
    def optimize(self, ctx: TrialContext, *, n_trials: int, timeout: float | None,
                 worker: int = 0) -> None:
        """Run trials through ``ctx.execute`` until the run has ``n_trials`` trials
        (counting earlier sessions) or ``timeout`` seconds have passed in this session.

        ``worker`` > 0 marks a helper process of a parallel run (``--jobs``): it must not
        do the driver's once-per-session work (closing stale trials, seeding trial 0).
        """
