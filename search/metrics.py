"""Named metrics a space may choose, with their direction and the tasks they fit.

Scores are computed with scikit-learn from prediction arrays as Keras returns them:
regression ``(n,)``/``(n, k)`` values, binary ``(n, 1)`` positive-class probabilities,
multiclass ``(n, C)`` probabilities; targets as the space's loader returns them (values,
0/1 labels, int labels or one-hot rows). Binary also takes ``(n, 2)`` (a 2-unit softmax:
column 1 is the positive class) and one-hot ``(n, 2)`` labels, so callers that did not go
through :func:`search.modelio.predict` score the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn import metrics as skm

Task = Literal["binary", "multiclass", "regression"]
Direction = Literal["minimize", "maximize"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")

__all__ = ["METRICS", "TASKS", "Direction", "Metric", "Task", "class_labels", "get_metric"]


def class_labels(y: np.ndarray, task: Task) -> np.ndarray:
    """Integer class labels from 0/1 labels, int labels or one-hot rows (for stratifying).

    One-hot rows are argmax-ed for binary too: ``(n, 2)`` labels of a 2-unit softmax space.
    """
    y = np.asarray(y)
    if task != "regression" and y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    return np.rint(y.reshape(len(y))).astype(np.int64)


def _proba(pred: np.ndarray, task: Task) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    if task == "binary":
        if pred.ndim == 2 and pred.shape[1] == 2:
            return pred[:, 1]  # a 2-unit softmax: the positive class's column
        return pred.reshape(len(pred))
    return pred


def _values(a: np.ndarray) -> np.ndarray:
    """``(n,)`` for one target; ``(n, k)`` for k, which scikit-learn averages over targets.

    A regression output may be as wide as its target (the output check allows it), so a
    multi-column target must score rather than fail every trial in ``squeeze``.
    """
    values = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    return values[:, 0] if values.shape[1] == 1 else values


def _accuracy(y: np.ndarray, pred: np.ndarray, task: Task) -> float:
    if task == "binary":
        return float(skm.accuracy_score(class_labels(y, task), _proba(pred, task) >= 0.5))
    return float(skm.accuracy_score(class_labels(y, task), np.argmax(pred, axis=1)))


def _log_loss(y: np.ndarray, pred: np.ndarray, task: Task) -> float:
    p = np.clip(_proba(pred, task), 1e-7, 1 - 1e-7)
    if task == "binary":
        return float(skm.log_loss(class_labels(y, task), p, labels=[0, 1]))
    p = p / p.sum(axis=1, keepdims=True)
    return float(skm.log_loss(class_labels(y, task), p, labels=np.arange(p.shape[1])))


def _auc(y: np.ndarray, pred: np.ndarray, task: Task) -> float:
    if task == "binary":
        return float(skm.roc_auc_score(class_labels(y, task), _proba(pred, task)))
    p = np.asarray(pred, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return float(
        skm.roc_auc_score(class_labels(y, task), p, multi_class="ovr", labels=np.arange(p.shape[1]))
    )


@dataclass(frozen=True)
class Metric:
    """A score function plus which way is better and which tasks it applies to."""

    name: str
    direction: Direction
    tasks: tuple[Task, ...]
    fn: Callable[[np.ndarray, np.ndarray, Task], float]

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, task: Task) -> float:
        return self.fn(y_true, y_pred, task)

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a < b if self.direction == "minimize" else a > b


_CLS: tuple[Task, ...] = ("binary", "multiclass")
_REG: tuple[Task, ...] = ("regression",)

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("mae", "minimize", _REG, lambda y, p, t: float(skm.mean_absolute_error(
            _values(y), _values(p)))),
        Metric("mse", "minimize", _REG, lambda y, p, t: float(skm.mean_squared_error(
            _values(y), _values(p)))),
        Metric("rmse", "minimize", _REG, lambda y, p, t: float(np.sqrt(skm.mean_squared_error(
            _values(y), _values(p))))),
        Metric("r2", "maximize", _REG, lambda y, p, t: float(skm.r2_score(_values(y), _values(p)))),
        Metric("accuracy", "maximize", _CLS, _accuracy),
        Metric("log_loss", "minimize", _CLS, _log_loss),
        Metric("auc", "maximize", _CLS, _auc),
    ]
}


def get_metric(name: str) -> Metric:
    """Look a metric up by name; ``KeyError`` lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None
