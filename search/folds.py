"""The run's K folds: computed once, stored, and shared by every trial.

Every trial of a run sees the same folds, so out-of-fold predictions of different trials
are aligned row for row; that is what makes fitting ensemble weights on them leakage-free.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from search.errors import UsageError
from search.metrics import Task, class_labels

__all__ = ["fold_indices", "make_folds"]


def make_folds(y: np.ndarray, task: Task, k: int, seed: int) -> np.ndarray:
    """Assign each training row to one of ``k`` validation folds.

    Classification uses StratifiedKFold (every fold keeps the class balance), regression
    KFold; both shuffled with ``seed``.

    Returns:
        An ``int16`` array with the fold id (0..k-1) of every row.
    """
    n = len(y)
    if k < 2:
        raise UsageError(f"--folds must be at least 2; got {k}")
    if k > n:
        raise UsageError(f"--folds {k} is more than the {n} training rows")
    fold_of = np.empty(n, dtype=np.int16)
    if task == "regression":
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(n))
    else:
        labels = class_labels(y, task)
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # rare classes: sklearn copes
                splits = list(splitter.split(np.zeros(n), labels))
        except ValueError as exc:
            raise UsageError(f"cannot make {k} stratified folds: {exc}; use fewer --folds") from exc
    for fold, (_, val_idx) in enumerate(splits):
        fold_of[val_idx] = fold
    return fold_of


def fold_indices(fold_of: np.ndarray, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices of one fold."""
    val = np.flatnonzero(fold_of == fold)
    train = np.flatnonzero(fold_of != fold)
    return train, val
