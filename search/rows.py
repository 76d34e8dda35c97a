"""A run over a subset of the space's training rows: the seam nested cross-validation needs.

``python -m search evaluate`` (:mod:`search.nested`) runs the whole procedure once per outer
fold, each time on the outer-train rows, scored on the outer-held-out rows. Such a run is a
normal run directory whose *training* rows are some rows of the space's training split and
whose *test* rows are others; the space's own test split is never loaded into it. The
choice of rows is stored with the run (``run.json``'s ``rows`` entry and two index arrays),
so everything that reopens the run (``run --resume``, ``worker``, ``retrain``, ``ensemble``,
``show``) sees exactly the rows its trials saw, and it travels in the
:class:`~search.plan.RunPlan`, so ``--jobs`` children and Ray workers, which load the data
themselves, take the same rows. Runs without the entry use the space's own split, as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from search.errors import StoreError, UsageError

if TYPE_CHECKING:
    from search.store import RunStore

__all__ = ["ROWS_TEST", "ROWS_TRAIN", "RowSubset", "read_rows", "take_rows"]

#: The index arrays inside a run directory (row numbers of the space's training split).
ROWS_TRAIN = "rows_train.npy"
ROWS_TEST = "rows_test.npy"


def take_rows(x: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an input that may be a dict/list/tuple of arrays (multi-input): the
    one way trials, refits and row subsets index the data."""
    if isinstance(x, dict):
        return {k: take_rows(v, idx) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(take_rows(v, idx) for v in x)
    return x[idx]


@dataclass(frozen=True, eq=False)
class RowSubset:
    """Which rows of the space's training split a run uses as its training and test rows.

    Attributes:
        train: Row numbers (into the space's training split) the run trains and validates on.
        test: Row numbers it predicts and scores as its "test" set (never fitted on).
        n_source: Rows in the space's training split; checked on every load, so a loader
            that now returns other data is an error, not a silent misalignment.
    """

    train: np.ndarray
    test: np.ndarray
    n_source: int

    @classmethod
    def checked(cls, train: Any, test: Any, n_source: int) -> RowSubset:
        """Validated indices: in range, no duplicates, and no row both trained and tested
        on (that would leak the held-out rows into the search)."""
        tr = np.asarray(train, dtype=np.int64).reshape(-1)
        te = np.asarray(test, dtype=np.int64).reshape(-1)
        for name, idx in (("train", tr), ("test", te)):
            if len(idx) == 0:
                raise UsageError(f"rows: the {name} rows are empty")
            if idx.min() < 0 or idx.max() >= n_source:
                raise UsageError(f"rows: {name} row numbers must lie in 0..{n_source - 1}; got "
                                 f"{idx.min()}..{idx.max()}")
            if len(np.unique(idx)) != len(idx):
                raise UsageError(f"rows: the {name} rows repeat a row number")
        both = np.intersect1d(tr, te)
        if len(both):
            raise UsageError(f"rows: {len(both)} rows are both train and test rows (e.g. row "
                             f"{int(both[0])}); they must be disjoint")
        return cls(train=tr, test=te, n_source=int(n_source))

    @cached_property
    def key(self) -> str:
        """A short digest of the indices: per-process data caches tell subsets apart by it."""
        h = hashlib.sha256()
        h.update(str(self.n_source).encode())
        h.update(np.ascontiguousarray(self.train, dtype=np.int64).tobytes())
        h.update(b"|")
        h.update(np.ascontiguousarray(self.test, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def apply(self, x_train: Any, y_train: np.ndarray) -> tuple[Any, np.ndarray, Any, np.ndarray]:
        """``(x_train, y_train, x_test, y_test)`` of the subset, from the space's training split.

        Raises:
            StoreError: the training split no longer has ``n_source`` rows.
        """
        if len(y_train) != self.n_source:
            raise StoreError(
                f"the space's training split has {len(y_train)} rows, but this run's rows were "
                f"chosen from {self.n_source}; check --data-dir (the data must be the same)"
            )
        return (take_rows(x_train, self.train), y_train[self.train],
                take_rows(x_train, self.test), y_train[self.test])

    def to_json(self) -> dict[str, Any]:
        """run.json's ``rows`` entry (the indices themselves live in two .npy files)."""
        return {"source": "train", "n_source": self.n_source, "train": ROWS_TRAIN,
                "test": ROWS_TEST, "n_train": len(self.train), "n_test": len(self.test),
                "sha256": self.key}

    def save(self, store: RunStore) -> None:
        """Write the index arrays into the run directory (before run.json names them)."""
        store.save_array(ROWS_TRAIN, self.train)
        store.save_array(ROWS_TEST, self.test)


def read_rows(store: RunStore, run: dict[str, Any] | None = None) -> RowSubset | None:
    """The run's row subset, or None for a run on the space's own split (every run made
    before this entry existed)."""
    run = store.read_run() if run is None else run
    spec = run.get("rows")
    if not spec:
        return None
    rows = RowSubset(train=store.load_array(spec.get("train", ROWS_TRAIN)),
                     test=store.load_array(spec.get("test", ROWS_TEST)),
                     n_source=int(spec["n_source"]))
    if spec.get("sha256") and spec["sha256"] != rows.key:
        raise StoreError(f"{store.root}: {ROWS_TRAIN}/{ROWS_TEST} differ from the rows run.json "
                         "recorded (sha256); the run's data cannot be rebuilt")
    return rows
