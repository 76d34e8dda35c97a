"""The loss of a weighted average of fixed member predictions, as a function of the weights.

Weight optimisers evaluate the same loss thousands of times on the same predictions, so each
objective precomputes whatever makes one evaluation cheap:

* log loss keeps only the probability each member gives the true class, ``(n_members,
  n_rows)``: with weights summing to 1 and rows summing to 1, the ensemble's true-class
  probability is the weighted average of those, and the other classes never enter the loss;
* squared-error losses (``mse``, ``rmse``, ``r2``) keep the ``(n_members, n_members)`` Gram
  matrix of the members' residuals (one per output for ``rmse``), so one evaluation costs
  ``O(n_members**2)`` whatever the number of rows;
* everything else (``mae``, ``accuracy``, callables) averages the full predictions and calls
  the loss, which is exact for any loss and as fast as that loss is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ensembles._losses import EPS, LossSpec
from ensembles._validation import Members
from search.errors import EnsembleError

FloatArray = NDArray[np.float64]

_BLOCK = int(np.log(np.finfo(np.float64).tiny) / np.log(EPS))
"""How many probabilities >= EPS can be multiplied without leaving the normal float range
(19 for EPS = 2.2e-16). Summing logs of block products instead of logs of every row divides the
number of ``log`` calls, the bottleneck of the log-loss objective, by this factor."""


class Objective(ABC):
    """A loss (lower is better) of the weighted average of fixed member predictions.

    Subclasses precompute in ``__init__`` so that ``__call__`` is cheap. Weights passed in are
    on the simplex (non-negative, summing to 1); objectives may rely on that.

    Attributes:
        n_members: Number of members the weights must have.
    """

    def __init__(self, n_members: int) -> None:
        self.n_members = n_members

    @abstractmethod
    def __call__(self, weights: FloatArray) -> float:
        """Returns the loss of the ensemble with ``weights`` (shape ``(n_members,)``)."""

    def for_search(self) -> Objective:
        """Returns the objective an optimiser should evaluate thousands of times.

        ``self`` unless a cheaper approximation exists whose error is far below any
        optimiser's tolerance; optimisers score their final candidates with ``self``.
        """
        return self

    def member_losses(self) -> FloatArray:
        """Returns each member's own loss, i.e. the objective at each simplex vertex."""
        return np.array([self(vertex) for vertex in np.eye(self.n_members)])


class TrueClassLogLoss(Objective):
    """Log loss from each member's probability of the true class.

    Rows where every member gives the true class at least ``EPS`` cannot need the lower clip
    (a weighted average of values >= EPS is >= EPS), so their logs are summed a block of rows
    at a time via ``log(prod(p)) == sum(log(p))``. The upper clip is applied to each member
    beforehand; that changes the ensemble probability by at most ``EPS`` relative, far below
    anything that matters. Other rows are clipped and logged one by one, exactly.

    Args:
        true_class_probabilities: ``(n_members, n_rows)``.
        dtype: Storage and averaging precision of the blocked rows; products and logs are
            always float64. ``float32`` halves the memory traffic of the averaging, the
            largest cost left, at a relative error of about 1e-7 (see ``for_search``).
    """

    def __init__(
        self, true_class_probabilities: FloatArray, dtype: type[np.floating[Any]] = np.float64
    ) -> None:
        n_members, n_rows = true_class_probabilities.shape
        super().__init__(n_members)
        self._probabilities = true_class_probabilities
        self._n_rows = n_rows
        self._dtype = dtype
        capped = np.minimum(true_class_probabilities, 1.0 - EPS)
        safe_rows = np.flatnonzero(capped.min(axis=0) >= EPS)
        self._n_blocked = (safe_rows.size // _BLOCK) * _BLOCK
        other_rows = np.setdiff1d(np.arange(n_rows), safe_rows[: self._n_blocked])
        order = np.concatenate([safe_rows[: self._n_blocked], other_rows])
        self._capped = np.ascontiguousarray(capped[:, order], dtype=dtype)
        self._buffer = np.empty(n_rows, dtype=dtype)

    def __call__(self, weights: FloatArray) -> float:
        mixed = np.dot(weights.astype(self._dtype, copy=False), self._capped, out=self._buffer)
        blocks = mixed[: self._n_blocked].reshape(_BLOCK, -1)
        products = np.multiply.reduce(blocks, axis=0, dtype=np.float64)
        total = float(np.log(products).sum())
        if self._n_blocked < self._n_rows:
            others = np.maximum(mixed[self._n_blocked :].astype(np.float64), EPS)
            total += float(np.log(others).sum())
        return -total / self._n_rows

    def for_search(self) -> Objective:
        """Returns a float32 twin: a relative error of ~1e-7, 1000 times below the default
        Nelder-Mead tolerance, for about a third less time per evaluation."""
        return TrueClassLogLoss(self._probabilities, dtype=np.float32)


class QuadraticLoss(Objective):
    """A loss built from quadratic forms in the weights: ``offset + mean_g f(w @ G_g @ w)``.

    With weights summing to 1 the ensemble residual is the weighted sum of member residuals,
    so its sum of squares is ``w @ (R @ R.T) @ w``. Working from residuals rather than
    expanding ``(y - w @ P)**2`` avoids cancellation when the ensemble is nearly exact. ``f``
    is the identity, or the square root for RMSE, which (like scikit-learn) is averaged over
    outputs, hence one Gram matrix per output ``g``.
    """

    def __init__(self, grams: FloatArray, *, offset: float = 0.0, root: bool = False) -> None:
        super().__init__(grams.shape[1])
        self._grams = grams
        self._offset = offset
        self._root = root

    def __call__(self, weights: FloatArray) -> float:
        squared = np.maximum(self._grams @ weights @ weights, 0.0)
        values = np.sqrt(squared) if self._root else squared
        return self._offset + float(values.mean())


class PredictionLoss(Objective):
    """Any loss of the averaged predictions: averages ``values`` and calls ``function``."""

    def __init__(
        self, values: NDArray[np.floating[Any]], function: Callable[[FloatArray], float]
    ) -> None:
        super().__init__(values.shape[0])
        self._values = np.asarray(values, dtype=np.float64)  # once, not at every evaluation
        self._function = function

    def __call__(self, weights: FloatArray) -> float:
        return float(self._function(np.tensordot(weights, self._values, axes=1)))


def make_objective(spec: LossSpec, members: Members, target: NDArray[Any]) -> Objective:
    """Builds the fastest exact objective for ``spec`` on these members and target.

    Args:
        spec: The resolved loss.
        members: Validated member predictions, ``(n_members, n_rows, n_outputs)``.
        target: ``y`` as encoded by ``check_target`` for ``spec.task``.

    Returns:
        The objective, to be minimised.

    Raises:
        EnsembleError: If the loss is undefined for this target (``r2`` on a constant ``y``).
    """
    values = members.values
    if spec.function is not None:
        user_function = spec.function
        shape = (members.n_rows, *members.output_shape)
        return PredictionLoss(values, lambda pred: user_function(target, pred.reshape(shape)))
    if spec.name == "log_loss":
        return TrueClassLogLoss(_true_class_probabilities(values, target))
    if spec.name == "accuracy":
        return PredictionLoss(values, lambda pred: -float(np.mean(_labels(pred) == target)))
    residuals = values - target[np.newaxis]
    if spec.name == "mae":
        return PredictionLoss(residuals, lambda pred: float(np.mean(np.abs(pred))))
    if spec.name == "mse":
        flat = residuals.reshape(members.n_members, -1)
        return QuadraticLoss((flat @ flat.T / flat.shape[1])[np.newaxis])
    if spec.name == "rmse":
        per_output = np.einsum("ino,jno->oij", residuals, residuals) / members.n_rows
        return QuadraticLoss(per_output, root=True)
    if spec.name == "r2":
        return QuadraticLoss(_r2_gram(residuals, target)[np.newaxis], offset=-1.0)
    raise EnsembleError(f"no objective for loss {spec.name!r}.")  # pragma: no cover


def _true_class_probabilities(
    values: NDArray[np.floating[Any]], labels: NDArray[Any]
) -> FloatArray:
    if values.shape[2] == 1:
        positive = values[:, :, 0].astype(np.float64)
        return np.where(labels == 1, positive, 1.0 - positive)
    return values[:, np.arange(values.shape[1]), labels].astype(np.float64)


def _labels(pred: FloatArray) -> NDArray[np.int64]:
    if pred.shape[1] == 1:
        return (pred[:, 0] > 0.5).astype(np.int64)
    return np.argmax(pred, axis=1)


def _r2_gram(residuals: FloatArray, target: FloatArray) -> FloatArray:
    """Gram matrix whose quadratic form is ``1 - r2`` (r2 averaged uniformly over outputs)."""
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    if np.any(total == 0.0):
        output = int(np.argmin(total))
        raise EnsembleError(
            f"loss 'r2' is undefined for a constant y (output {output}); "
            "expected y with some variance. Use 'mse' instead."
        )
    scaled = residuals / np.sqrt(total * target.shape[1])
    flat = scaled.reshape(residuals.shape[0], -1)
    return flat @ flat.T
