"""Checks that turn user input into arrays the ensembles can trust.

Every message states what was expected and what was got, because the arrays usually come from
files written by another stage (``trials/<id>/oof.npy``) and the user needs to know which one
to look at.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ensembles._losses import Task
from search.errors import EnsembleError

FloatValues = NDArray[np.floating[Any]]

PROBABILITY_SUM_TOL = 1e-3
"""How far a row of class probabilities may sum from 1: loose enough for float32 softmax
outputs saved to disk, tight enough to catch logits or unnormalised scores."""

PROBABILITY_RANGE_TOL = 1e-6
"""How far a probability may stray outside ``[0, 1]`` (float32 rounding) before we refuse it."""


@dataclass(frozen=True)
class Members:
    """Validated member predictions.

    Attributes:
        values: Float array of shape ``(n_members, n_rows, n_outputs)``; members given as
            ``(n_rows,)`` get ``n_outputs == 1``. float32 input stays float32, any other
            becomes float64.
        output_shape: Trailing shape of one member's prediction per row: ``()`` for members
            of shape ``(n_rows,)``, ``(n_outputs,)`` otherwise. ``predict`` returns this shape.
    """

    values: FloatValues
    output_shape: tuple[int, ...]

    @property
    def n_members(self) -> int:
        """Number of members."""
        return int(self.values.shape[0])

    @property
    def n_rows(self) -> int:
        """Number of rows each member predicts."""
        return int(self.values.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of outputs per row (classes for multiclass, 1 for binary or regression)."""
        return int(self.values.shape[2])


def _as_float_array(value: ArrayLike, what: str) -> FloatValues:
    """Converts to float64, except that float32 stays float32: OOF arrays saved by Keras are
    float32, and a float64 copy of 10 x 25,000 x 46 of them would cost 90 MB and 0.1 s."""
    if hasattr(value, "toarray") or type(value).__module__.startswith("scipy.sparse"):
        raise EnsembleError(
            f"{what} is a sparse matrix; sparse input is not supported: member predictions "
            "are dense, pass a dense array (e.g. `.toarray()`)."
        )
    try:
        array = np.asarray(value)
        return array if array.dtype == np.float32 else array.astype(np.float64, copy=False)
    except (TypeError, ValueError) as error:
        raise EnsembleError(
            f"{what} must be a numeric array; got {type(value).__name__} "
            f"that numpy cannot convert to float ({error})."
        ) from error


def _stack_members(predictions: Sequence[ArrayLike]) -> FloatValues:
    """Stacks a list of per-member arrays, naming the first member whose shape differs."""
    arrays = [_as_float_array(member, f"member {i}") for i, member in enumerate(predictions)]
    for i, array in enumerate(arrays):
        if array.ndim not in (1, 2):
            raise EnsembleError(
                f"member {i} has shape {array.shape}; expected (n_rows,) or (n_rows, n_outputs)."
            )
        if array.shape != arrays[0].shape:
            raise EnsembleError(
                f"member {i} has shape {array.shape} but member 0 has shape "
                f"{arrays[0].shape}; every member must predict the same rows "
                "and outputs."
            )
    if not arrays:
        return np.empty((0, 0), dtype=np.float64)
    return np.stack(arrays)


def check_predictions(predictions: ArrayLike, *, task: Task | None) -> Members:
    """Validates member predictions and brings them to ``(n_members, n_rows, n_outputs)``.

    Args:
        predictions: Array of shape ``(n_members, n_rows)`` or ``(n_members, n_rows,
            n_outputs)``, or a list of per-member arrays of shape ``(n_rows,)`` or ``(n_rows,
            n_outputs)``.
        task: ``"classification"`` additionally requires probabilities: values in ``[0, 1]``
            and, with several outputs, rows summing to 1. ``None`` checks shape and
            finiteness only.

    Returns:
        The validated members.

    Raises:
        EnsembleError: On any shape, finiteness or probability problem.
    """
    if isinstance(predictions, (list, tuple)):
        values = _stack_members(predictions)
    else:
        values = _as_float_array(predictions, "predictions")
    if values.ndim not in (2, 3):
        raise EnsembleError(
            "predictions must have shape (n_members, n_rows) or (n_members, "
            f"n_rows, n_outputs); got shape {values.shape}."
        )
    if values.shape[0] < 2:
        raise EnsembleError(f"Number of members must be at least 2; got {values.shape[0]}.")
    output_shape: tuple[int, ...] = tuple(int(size) for size in values.shape[2:])
    if values.ndim == 2:
        values = values[:, :, np.newaxis]
    if values.shape[1] == 0 or values.shape[2] == 0:
        raise EnsembleError(
            "predictions must hold at least one row and one output per "
            f"member; got per-member shape {values.shape[1:]}."
        )
    _check_finite(values)
    if task == "classification":
        check_probabilities(values)
    return Members(values=values, output_shape=output_shape)


def _check_finite(values: FloatValues) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        member, row, _ = np.argwhere(~finite)[0]
        count = int(finite.size - np.count_nonzero(finite))
        raise EnsembleError(
            f"predictions contain {count} NaN or infinite values (first at "
            f"member {member}, row {row}); expected finite values for every "
            "member and row."
        )


def check_probabilities(values: FloatValues) -> None:
    """Refuses values outside [0, 1] and, with several outputs, rows not summing to 1."""
    low, high = float(values.min()), float(values.max())
    if low < -PROBABILITY_RANGE_TOL or high > 1.0 + PROBABILITY_RANGE_TOL:
        raise EnsembleError(
            "classification predictions must be probabilities in [0, 1]; got "
            f"values from {low:.6g} to {high:.6g}."
        )
    if values.shape[2] < 2:
        return
    sums = values.sum(axis=2)
    bad = np.abs(sums - 1.0) > PROBABILITY_SUM_TOL
    if bad.any():
        member, row = np.argwhere(bad)[0]
        raise EnsembleError(
            f"class probabilities of member {member}, row {row} sum to "
            f"{sums[member, row]:.6g}; expected 1 (within "
            f"{PROBABILITY_SUM_TOL:g}). Pass probabilities, not logits."
        )


def check_target(y: ArrayLike, members: Members, task: Task | None) -> NDArray[Any]:
    """Validates ``y`` against the members and encodes it for the task.

    Args:
        y: Regression values ``(n_rows,)`` / ``(n_rows, n_outputs)``; binary 0/1 labels; or
            multiclass integer labels ``(n_rows,)`` or one-hot ``(n_rows, n_classes)``.
        members: The validated members ``y`` belongs to.
        task: Decides the encoding; ``None`` (callable losses) returns ``y`` as given.

    Returns:
        Integer labels ``(n_rows,)`` for classification, float ``(n_rows, n_outputs)`` for
        regression, the unchanged array for ``None``.

    Raises:
        EnsembleError: If ``y`` does not fit the members or the task.
    """
    target = np.asarray(y)
    if target.ndim == 0 or target.shape[0] != members.n_rows:
        got = "a scalar" if target.ndim == 0 else f"{target.shape[0]} rows"
        raise EnsembleError(f"y has {got} but predictions have {members.n_rows} rows.")
    if task is None:
        return target
    values = np.asarray(_as_float_array(target, "y"), dtype=np.float64)
    finite = np.isfinite(values).reshape(values.shape[0], -1).all(axis=1)
    if not finite.all():
        raise EnsembleError(
            f"y has {int((~finite).sum())} rows with NaN or infinite values "
            f"(first at row {int(np.argmin(finite))}); expected finite targets."
        )
    if task == "regression":
        return _regression_target(values, members)
    return _class_labels(values, members)


def _regression_target(values: NDArray[np.float64], members: Members) -> NDArray[np.float64]:
    k = members.n_outputs
    if values.ndim == 1 and k == 1:
        return values[:, np.newaxis]
    if values.ndim == 2 and values.shape[1] == k:
        return values
    n = members.n_rows
    expected = f"({n},) or ({n}, 1)" if k == 1 else f"({n}, {k})"
    raise EnsembleError(
        f"y has shape {values.shape} but members predict shape "
        f"{(n, *members.output_shape)}; expected y of shape {expected}."
    )


def _class_labels(values: NDArray[np.float64], members: Members) -> NDArray[np.int64]:
    k = members.n_outputs
    n_classes = 2 if k == 1 else k
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 2 and values.shape[1] == k and k > 1:
        is_binary = np.all((values == 0.0) | (values == 1.0), axis=1)
        one_hot = is_binary & (values.sum(axis=1) == 1.0)
        if not one_hot.all():
            row = int(np.argmin(one_hot))
            raise EnsembleError(
                f"y has one-hot shape {values.shape} but row {row} is "
                f"{values[row].tolist()[:10]}; expected exactly one 1."
            )
        return np.argmax(values, axis=1).astype(np.int64)
    if values.ndim != 1:
        raise EnsembleError(
            f"y has shape {values.shape}; expected labels ({values.shape[0]},)"
            f" or one-hot ({values.shape[0]}, {n_classes}) for members "
            f"predicting {n_classes} classes."
        )
    labels = values.astype(np.int64)
    bad = (labels != values) | (labels < 0) | (labels >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise EnsembleError(
            f"y holds label {values[row]:g} at row {row}; expected integer "
            f"labels 0..{n_classes - 1} for members predicting {n_classes} "
            "classes."
        )
    return labels


def check_int(value: object, name: str, *, minimum: int) -> int:
    """Checks an integer parameter (``bool`` excluded) and returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise EnsembleError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_positive_float(value: object, name: str) -> float:
    """Checks a strictly positive real parameter and returns it as ``float``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise EnsembleError(f"`{name}` must be a positive number; got {value!r}.")
    return float(value)
