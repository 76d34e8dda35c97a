"""Named losses and metrics the ensembles can minimise, and how to resolve a ``loss`` argument.

Every objective is *minimised*. Losses (``"log_loss"``, ``"mse"``, ``"rmse"``, ``"mae"``) are
used as they are; metrics where higher is better (``"accuracy"``, ``"r2"``) are negated, so an
ensemble fitted on ``"accuracy"`` reports ``loss_ == -accuracy``. A callable is minimised as
given: pass ``lambda y, p: -my_score(y, p)`` for a score.

When no ``loss`` is given, the task is inferred at ``fit`` (:func:`infer_task`) and its loss
used (:data:`TASK_LOSSES`: log loss for classification, MSE for regression). 0/1 targets are
valid regression targets *and* valid binary labels, so the rule reads the predictions too and
calls a fit "classification" only when they are probabilities of the labels ``y`` holds; pass
``task="regression"`` (or ``loss="mse"``) for a 0/1 regression target predicted in [0, 1]. An
explicit ``loss`` always wins over ``task``, and ``task`` over the inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from search.errors import EnsembleError

Task = Literal["classification", "regression"]
LossFunction = Callable[[NDArray[Any], NDArray[Any]], float]
LossLike = str | LossFunction

EPS = float(np.finfo(np.float64).eps)
"""Probabilities are clipped to ``[EPS, 1 - EPS]`` before taking logs, so one confidently wrong
member costs a large but finite loss instead of ``inf``. Machine epsilon is what
``sklearn.metrics.log_loss`` uses for float64, so ``loss_`` matches it to rounding."""


@dataclass(frozen=True)
class LossSpec:
    """A resolved ``loss`` argument.

    Attributes:
        name: The loss name, or the callable's ``__name__`` for callables.
        task: The task the loss implies; ``None`` for callables, whose inputs are only
            checked for shape and finiteness because we cannot know what they expect.
        greater_is_better: Whether the underlying metric grows with quality; such metrics are
            negated so that every objective is minimised.
        function: The user's callable, ``None`` for named losses.
    """

    name: str
    task: Task | None
    greater_is_better: bool = False
    function: LossFunction | None = None


TASKS: tuple[Task, ...] = ("classification", "regression")

NAMED_LOSSES: dict[str, LossSpec] = {
    "log_loss": LossSpec("log_loss", "classification"),
    "accuracy": LossSpec("accuracy", "classification", greater_is_better=True),
    "mse": LossSpec("mse", "regression"),
    "rmse": LossSpec("rmse", "regression"),
    "mae": LossSpec("mae", "regression"),
    "r2": LossSpec("r2", "regression", greater_is_better=True),
}
"""Named losses: log loss and accuracy for classification, the rest for regression."""


def resolve_loss(loss: object) -> LossSpec:
    """Turns a ``loss`` parameter into a :class:`LossSpec`.

    Args:
        loss: A key of :data:`NAMED_LOSSES` or a callable ``(y_true, y_pred) -> float``.

    Returns:
        The resolved spec.

    Raises:
        EnsembleError: If ``loss`` is neither a known name nor a callable.
    """
    if isinstance(loss, str):
        spec = NAMED_LOSSES.get(loss)
        if spec is None:
            names = ", ".join(repr(name) for name in NAMED_LOSSES)
            raise EnsembleError(f"`loss` must be one of {names} or a callable; got {loss!r}.")
        return spec
    if callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
        return LossSpec(name, task=None, function=loss)
    raise EnsembleError(
        f"`loss` must be a loss name or a callable (y_true, y_pred) -> float; got {loss!r}."
    )


TASK_LOSSES: dict[Task, str] = {"classification": "log_loss", "regression": "mse"}
"""The loss used when only the task is known: each task's proper scoring rule, smooth in the
weights, so that Nelder-Mead and greedy selection have something to descend."""


def check_task(task: object) -> Task | None:
    """Validates a ``task`` parameter (``None``: infer it at fit)."""
    if task is None or task in TASKS:
        return task
    raise EnsembleError(f"`task` must be 'classification', 'regression' or None; got {task!r}.")


def infer_task(values: NDArray[np.floating[Any]], y: NDArray[Any]) -> Task:
    """Reads the task off validated member predictions and their targets.

    Classification iff the members' values are probabilities (in ``[0, 1]``; with several
    outputs, rows summing to 1) *and* ``y`` holds labels they can be probabilities of: 0/1
    for one output; integer labels ``0..k-1`` or one-hot rows for ``k`` outputs. Anything else
    is regression. Tolerances are those of the probability checks, so float32 softmax outputs
    read from disk still count as probabilities.

    Args:
        values: Member predictions, ``(n_members, n_rows, n_outputs)``, finite.
        y: The targets as given, first axis ``n_rows``.

    Returns:
        ``"classification"`` or ``"regression"``.
    """
    from ensembles._validation import PROBABILITY_RANGE_TOL, PROBABILITY_SUM_TOL

    target = np.asarray(y)
    if not np.issubdtype(target.dtype, np.number) and target.dtype != np.bool_:
        return "regression"  # let the regression checks name the problem
    target = target.astype(np.float64)
    if not np.isfinite(target).all():
        return "regression"
    low, high = float(values.min()), float(values.max())
    if low < -PROBABILITY_RANGE_TOL or high > 1.0 + PROBABILITY_RANGE_TOL:
        return "regression"
    n_outputs = values.shape[2]
    if target.ndim == 2 and target.shape[1] == 1:
        target = target[:, 0]
    is_binary = bool(np.all((target == 0.0) | (target == 1.0)))
    if n_outputs == 1:
        return "classification" if target.ndim == 1 and is_binary else "regression"
    if np.abs(values.sum(axis=2) - 1.0).max() > PROBABILITY_SUM_TOL:
        return "regression"
    if target.ndim == 1:
        labels = target == np.round(target)
        in_range = (target >= 0) & (target < n_outputs)
        return "classification" if bool(np.all(labels & in_range)) else "regression"
    one_hot = (
        target.ndim == 2
        and target.shape[1] == n_outputs
        and is_binary
        and bool(np.all(target.sum(axis=1) == 1.0))
    )
    return "classification" if one_hot else "regression"
