"""Named losses and metrics the ensembles can minimise, and how to resolve a ``loss`` argument.

Every objective is *minimised*. Losses (``"log_loss"``, ``"mse"``, ``"rmse"``, ``"mae"``) are
used as they are; metrics where higher is better (``"accuracy"``, ``"r2"``) are negated, so an
ensemble fitted on ``"accuracy"`` reports ``loss_ == -accuracy``. A callable is minimised as
given: pass ``lambda y, p: -my_score(y, p)`` for a score.

The task (classification or regression) is read off the loss rather than guessed from ``y``:
0/1 targets are valid regression targets and valid binary labels, so ``"auto"`` could not be
inferred unambiguously and is deliberately not offered.
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
