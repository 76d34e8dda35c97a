"""The driver's sink: turns trials' plain results into store files, keeps the best models.

Every executor (in-process, ``--jobs`` children, Ray workers on other machines) ends in one
:class:`StoreWriter` in the driver, so the store has one writer, model retention and
progress events happen in one place, and trial records are read from disk once per run
(kept in memory afterwards) instead of once per trial.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from search.errors import StoreError
from search.events import SearchEvents
from search.folds import repeat_count, repeat_mean, rows_of
from search.results import FoldResult
from search.store import RunStore, TrialLock, TrialRecord, json_bytes, npy_bytes, write_bytes

__all__ = ["StoreWriter"]


@dataclass
class _Open:
    """A running trial's accumulating arrays (``oof``: one per K-fold split,
    ``(repeats, n_train, outputs)``)."""

    oof: np.ndarray | None = None
    test_sum: np.ndarray | None = None
    n_test: int = 0
    models: int = 0  # fold model files this session wrote (maybe still queued)


class _DiskQueue:
    """The store's file operations, done in the order they were asked on a thread of their
    own, so a trial does not wait for them.

    Why: each file is written to a temporary name, ``fsync``ed and renamed (so a power loss
    cannot leave a torn file): 23 files a 4-fold trial that keeps its models. ``fsync``
    waits for the filesystem's journal, which also carries whatever else was written
    meanwhile (JAX's compilation cache, a second run): 38 ms a Boston trial in the
    benchmark, up to 50 ms, on the trial's critical path. Here the trial only serialises
    (the bytes are made when asked, so later changes to a record or array do not reach
    them) and goes on.

    Order is what keeps the store valid: one thread, first in first out, so a fold's files
    are on disk before the record that commits them, and a trial's lock is released only
    after its final record (another process then never mistakes it for interrupted). A
    kill -9 loses only operations still queued (milliseconds' worth): the store on disk is
    always a state it passed through, which a resume continues (the fold whose commit was
    lost runs again). After a failed operation the later ones are dropped (a commit must
    not follow data that failed to land) until the error is raised, by the next
    :meth:`put` or :meth:`flush`, as :class:`~search.errors.StoreError`.
    """

    def __init__(self) -> None:
        self._start_lock = threading.Lock()
        self._reset()
        _QUEUES.add(self)

    def _reset(self) -> None:
        self._queue: queue.Queue[tuple[int, Callable[..., object], tuple[object, ...]]] = \
            queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._error: BaseException | None = None
        #: Operations are numbered by generation: one ends when a failure is raised, and
        #: the thread drops the failed generation's operations queued after the failure.
        self._generation = 0
        self._failed = -1

    def put(self, op: Callable[..., object], *args: object) -> None:
        """Do ``op(*args)`` after everything asked before it.

        Raises:
            StoreError: an earlier operation failed (this one is not queued).
        """
        with self._start_lock:
            self._raise()
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                self._reset()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="search-store-writer",
                                                daemon=True)
                self._thread.start()
            self._queue.put((self._generation, op, args))

    def flush(self) -> None:
        """Wait until every operation asked so far is done; raise the first that failed."""
        if self._thread is not None and self._pid == os.getpid():
            self._queue.join()
        with self._start_lock:
            self._raise()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            self._generation += 1
            raise StoreError(f"writing the run's store failed: {type(error).__name__}: "
                             f"{error}") from error

    def _run(self) -> None:
        while True:
            generation, op, args = self._queue.get()
            try:
                if generation > self._failed:
                    op(*args)
            except BaseException as exc:  # kept for the caller: a thread cannot raise to it
                self._failed, self._error = generation, exc
            finally:
                self._queue.task_done()


_QUEUES: weakref.WeakSet[_DiskQueue] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Finish every queue's writes before the interpreter ends (its threads are daemons:
    they would die with their queues). A failure was the session's to raise; here it can
    only be dropped."""
    for disk in list(_QUEUES):
        try:
            disk.flush()
        except StoreError:
            pass


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
        #: Locks of the trials this session owns (allocated or running here).
        self._locks: dict[int, TrialLock] = {}
        self._fold_of: np.ndarray | None = None
        #: Failed trials in a row (this session, in the order they ended) and their reasons.
        self.consecutive_failures = 0
        self.failure_reasons: Counter[str] = Counter()
        self._disk = _DiskQueue()
        #: Guards ``_locks`` alone: the disk thread releases a trial's lock while another
        #: thread may hold ``_lock`` waiting for that thread (:meth:`release_all`).
        self._locks_lock = threading.Lock()

    def flush(self) -> None:
        """Wait until every file asked so far is in the store (see :class:`_DiskQueue`).

        Raises:
            StoreError: a write failed (disk full, permissions): its cause.
        """
        self._disk.flush()

    def _write(self, path: Path, data: bytes) -> None:
        self._disk.put(write_bytes, path, data)

    def _write_record(self, record: TrialRecord) -> None:
        """Queue ``record`` as it is now (serialised here: the caller goes on changing it)."""
        self._write(self.store.trial_json_path(record.number), json_bytes(record.to_json()))

    # -- ownership -----------------------------------------------------------------------
    def claim(self, number: int) -> bool:
        """Own trial ``number`` for this session (its lock); False if a live process does."""
        with self._locks_lock:
            if number in self._locks:
                return True
            lock = self.store.lock_trial(number)
            if lock is None:
                return False
            self._locks[number] = lock
            return True

    def allocate(self) -> int:
        """A new trial number from the store, owned by this session from the start."""
        while True:
            number = self.store.allocate()
            if self.claim(number):
                return number

    def _release_now(self, number: int) -> None:
        """Give up trial ``number``: queued after its final record, so the lock says the
        record may be trusted."""
        with self._locks_lock:
            lock = self._locks.pop(number, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        """Give up every trial this session holds: a trial still ``running`` then reads as
        interrupted (the next session continues it from its first unfinished fold)."""
        with self._lock:
            try:
                self.flush()
            finally:
                with self._locks_lock:
                    numbers = list(self._locks)
                for number in numbers:
                    self._release_now(number)
                self._open.clear()

    def _resumed(self, record: TrialRecord) -> _Open:
        """The arrays of an interrupted trial's committed folds, read back from the store.

        Only folds its record lists count: OOF rows of any other fold (written before a kill
        could commit them) are blanked, and the test predictions are those of listed folds.
        """
        self.flush()  # what this session wrote for it is read back
        acc = _Open()
        tdir = self.store.trial_dir(record.number)
        done = [f.fold for f in record.folds]
        if (tdir / "oof.npy").is_file():
            if self._fold_of is None:
                self._fold_of = self.store.load_array("folds.npy")
            fold_of = self._fold_of
            repeats = repeat_count(fold_of)
            if repeats == 1:
                oof = self.store.load_oof(record.number).astype(np.float32)[None]
            else:
                oof = self.store.load_oof_repeats(record.number).astype(np.float32)
            for r in range(repeats):
                oof[r, ~rows_of(fold_of, done, repeat=r)] = np.nan
            acc.oof = oof
        parts = [self.store.fold_test_path(record.number, k) for k in done]
        if parts and all(p.is_file() for p in parts):
            acc.test_sum = sum(np.load(p, allow_pickle=False) for p in parts)
            acc.n_test = len(parts)
        elif done and (tdir / "test.npy").is_file():  # stores made before test_fold_<k>
            acc.test_sum = self.store.load_test(record.number) * len(done)
            acc.n_test = len(done)
        return acc

    # -- the sink ------------------------------------------------------------------------
    def started(self, record: TrialRecord) -> None:
        """A trial starts (or continues: ``record.folds`` lists the folds it has)."""
        with self._lock:
            if not self.claim(record.number):
                raise StoreError(f"trial {record.number} is being run by another live "
                                 f"process ({self.store.trial_dir(record.number)}/.lock)")
            self._open[record.number] = self._resumed(record) if record.folds else _Open()
            self.records[record.number] = record
            self._write_record(record)
        self.events.trial_started(record.number)

    def fold(self, result: FoldResult) -> None:
        record, number = result.record, result.record.number
        with self._lock:
            acc = self._open.setdefault(number, _Open())
            if acc.oof is None:
                acc.oof = np.full((result.repeats, self.n_train, result.oof.shape[1]), np.nan,
                                  np.float32)
            acc.oof[result.repeat, result.rows] = result.oof
            if result.repeats > 1:  # the splits' own arrays first: a resume reads them
                self._write(self.store.oof_repeats_path(number), npy_bytes(acc.oof))
            self._write(self.store.oof_path(number), npy_bytes(repeat_mean(acc.oof)))
            if result.test is not None:
                acc.test_sum = (result.test if acc.test_sum is None
                                else acc.test_sum + result.test)
                acc.n_test += 1
                self._write(self.store.fold_test_path(number, result.fold),
                            npy_bytes(result.test.astype(np.float32)))
            tdir = self.store.trial_dir(number)
            if result.model is not None:
                acc.models += 1
                self._write(tdir / f"fold_{result.fold}.keras", result.model)
                if result.preprocessor is not None:
                    self._write(tdir / f"fold_{result.fold}.pre.joblib", result.preprocessor)
            record.models_kept = result.model is not None
            self.records[number] = record
            self._write_record(record)  # last: the commit record of this fold's files
        self.events.fold_finished(record, record.folds[-1])

    def finished(self, record: TrialRecord) -> None:
        """A trial ended: test.npy (the mean of its folds' test predictions), then its final
        record (the commit), then the per-fold files go."""
        with self._lock:
            acc = self._open.pop(record.number, None)
            if acc is not None and acc.test_sum is not None and acc.n_test:
                self._write(self.store.test_path(record.number),
                            npy_bytes((acc.test_sum / acc.n_test).astype(np.float32)))
            record.models_kept = bool(record.models_kept and (
                (acc is not None and acc.models) or self.store.model_paths(record.number)))
            self.records[record.number] = record
            self._write_record(record)
            self._disk.put(self.store.drop_fold_tests, record.number)
            self._disk.put(self._release_now, record.number)  # after its final record
            if record.status == "failed":
                self.consecutive_failures += 1
                self.failure_reasons[(record.error or "unknown").splitlines()[0]] += 1
            else:
                self.consecutive_failures = 0
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

    def keep_bar(self, number: int) -> float | None:
        """The CV score trial ``number`` must reach for retention to keep its fold models
        (see :attr:`~search.plan.TrialSpec.keep_bar`), or None when it may keep them
        whatever it scores: retention is off here (a ``search worker``), the trial is pinned,
        or fewer than ``keep_models`` trials have completed."""
        with self._lock:
            if not self.retain or number in self.pinned or self.keep_models <= 0:
                return None
            ranked = self.ranked()
            if len(ranked) < self.keep_models:
                return None
            return float(cast(float, ranked[self.keep_models - 1].score))

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
                self._disk.put(self.store.delete_models, record.number)
                record.models_kept = False
                self._write_record(record)
