"""The driver's sink: turns trials' plain results into store files, keeps the best models.

Every executor (in-process, ``--jobs`` children, Ray workers on other machines) ends in one
:class:`StoreWriter` in the driver, so the store has one writer, model retention and
progress events happen in one place, and trial records are read from disk once per run
(kept in memory afterwards) instead of once per trial.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.events import SearchEvents
from search.results import FoldResult
from search.store import RunStore, TrialRecord, atomic_write

__all__ = ["StoreWriter"]


@dataclass
class _Open:
    """A running trial's accumulating arrays."""

    oof: np.ndarray | None = None
    test_sum: np.ndarray | None = None
    n_test: int = 0


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


class StoreWriter:
    """Writes trials into a :class:`RunStore`; implements :class:`~search.results.TrialSink`.

    Args:
        store: The run's store.
        n_train: Training rows (the OOF array's length).
        direction: ``minimize``/``maximize``: what "best" means for retention.
        keep_models: Keep fold models of the best this many completed trials.
        events: Progress hooks (the CLI's progress bar).
        retain: Delete fold models outside the best ``keep_models`` after each trial.
            A ``search worker`` on a shared disk passes False: the driver owns retention.
    """

    def __init__(self, store: RunStore, *, n_train: int, direction: str, keep_models: int = 5,
                 events: SearchEvents | None = None, retain: bool = True) -> None:
        self.store = store
        self.n_train = n_train
        self.direction = direction
        self.keep_models = keep_models
        self.events = events or SearchEvents()
        self.retain = retain
        self._lock = threading.RLock()
        self._open: dict[int, _Open] = {}
        self.records: dict[int, TrialRecord] = {r.number: r for r in store.trials()}
        #: Trials whose fold models retention must keep for now (a backend may continue
        #: them: Keras Tuner's Hyperband starts a promoted trial from its parent's models).
        self.pinned: set[int] = set()

    # -- the sink ------------------------------------------------------------------------
    def started(self, record: TrialRecord) -> None:
        with self._lock:
            self._open[record.number] = _Open()
            self.records[record.number] = record
            self.store.write_trial(record)
        self.events.trial_started(record.number)

    def fold(self, result: FoldResult) -> None:
        record, number = result.record, result.record.number
        with self._lock:
            acc = self._open.setdefault(number, _Open())
            if acc.oof is None:
                acc.oof = np.full((self.n_train, result.oof.shape[1]), np.nan, np.float32)
            acc.oof[result.rows] = result.oof
            self.store.save_oof(number, acc.oof)
            if result.test is not None:
                acc.test_sum = (result.test if acc.test_sum is None
                                else acc.test_sum + result.test)
                acc.n_test += 1
                self.store.save_test(number, acc.test_sum / acc.n_test)
            tdir = self.store.trial_dir(number)
            if result.model is not None:
                _write_bytes(tdir / f"fold_{result.fold}.keras", result.model)
                if result.preprocessor is not None:
                    _write_bytes(tdir / f"fold_{result.fold}.pre.joblib", result.preprocessor)
            record.models_kept = result.model is not None
            self.records[number] = record
            self.store.write_trial(record)  # last: the commit record of this fold's files
        self.events.fold_finished(record, record.folds[-1])

    def finished(self, record: TrialRecord) -> None:
        with self._lock:
            self._open.pop(record.number, None)
            record.models_kept = bool(record.models_kept and self.store.model_paths(
                record.number))
            self.records[record.number] = record
            self.store.write_trial(record)
            if self.retain:
                self._retain()
            ranked = self.ranked()
        self.events.trial_finished(record, ranked[0] if ranked else None)

    # -- queries -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read records written by other processes (``search worker`` on a shared disk)."""
        base = self.store.root / "trials"
        if not base.is_dir():
            return
        with self._lock:
            for d in base.iterdir():
                if not d.name.isdigit() or not (d / "trial.json").is_file():
                    continue
                n = int(d.name)
                known = self.records.get(n)
                if n in self._open or (known is not None and known.status != "running"):
                    continue
                try:
                    self.records[n] = self.store.read_trial(n)
                except Exception:  # being written by another process right now
                    continue

    def ranked(self) -> list[TrialRecord]:
        """Completed trials, best first."""
        with self._lock:
            return self.store.ranked(self.direction, list(self.records.values()))

    def finished_count(self) -> int:
        """Trials that ended (complete, pruned or failed)."""
        with self._lock:
            return sum(r.status != "running" for r in self.records.values())

    def retain_now(self) -> None:
        """Apply retention now (after a backend unpinned trials)."""
        if self.retain:
            with self._lock:
                self._retain()

    def _retain(self) -> None:
        self.refresh()
        best = {t.number for t in self.ranked()[: self.keep_models]}
        for record in list(self.records.values()):
            if record.status == "running" or record.number in best or \
                    record.number in self._open or record.number in self.pinned:
                continue
            if record.models_kept:
                self.store.delete_models(record.number)
                record.models_kept = False
                self.store.write_trial(record)
