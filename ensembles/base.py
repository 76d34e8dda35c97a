"""The estimator contract every ensemble follows, and the one method a new one writes.

Ensembles combine *prediction arrays* of members trained elsewhere (like scikit-learn's
``StackingClassifier(cv="prefit")``), never models: ``fit(oof_predictions, y)`` learns weights
on out-of-fold predictions and ``predict(test_predictions)`` applies them. Following
scikit-learn, ``__init__`` only stores keyword-only parameters, ``fit`` validates and returns
``self``, learned attributes end in ``_`` and ``predict`` refuses to run before ``fit``.

Every estimator constructs with defaults: without a ``loss`` the task is inferred from
``y`` and the predictions at ``fit`` (see ``ensembles._losses.infer_task``) and its loss used.
``fit(predictions, y, groups=fold_ids)`` cross-fits the weights over the groups and shrinks
them towards the equal average by as much as held-out rows ask for (see :meth:`BaseEnsemble.fit`).

A new ensemble subclasses :class:`BaseEnsemble` and implements ``_fit_weights``; validation,
loss handling, ``predict`` and ``score`` come with the base.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from ensembles._losses import TASK_LOSSES, LossSpec, Task, check_task, infer_task, resolve_loss
from ensembles._objectives import FloatArray, Objective, make_objective
from ensembles._validation import (
    Members,
    check_predictions,
    check_probabilities,
    check_target,
)
from search.errors import EnsembleError, NotFittedError

DEFAULT_SHRINKAGES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Shrinkages tried by cross-fitting: 0 keeps the learned weights, 1 is the equal average.
Five points are enough: the cross-fitted loss of a few folds is too noisy to tell finer
steps apart, and each point costs nothing (the fold weights are fitted once)."""

TIE_TOL = 1e-12
"""Relative tolerance under which two cross-fitted losses count as tied (the larger
shrinkage then wins: with no evidence for the learned weights, the equal average is safer)."""


class EnsembleNotFittedError(NotFittedError, SklearnNotFittedError):
    """An ensemble used before ``fit``: ours (a ``SearchError``) and scikit-learn's
    ``NotFittedError`` (so ``check_estimator`` and code catching sklearn's error see it)."""


class BaseEnsemble(BaseEstimator, ABC):
    """Weighted average of member predictions with weights learned by ``_fit_weights``.

    ``get_params``/``set_params`` (and so ``sklearn.clone``) come from scikit-learn's
    ``BaseEstimator``; subclasses must therefore store each ``__init__`` argument unchanged
    under its own name.

    Attributes:
        weights_: Float array ``(n_members,)``, non-negative and summing to 1 (after
            shrinkage when ``fit`` got ``groups``).
        n_members_: Number of members seen in ``fit``.
        loss_: The objective at ``weights_`` on the data passed to ``fit`` (lower is
            better). Not set by an ``AverageEnsemble`` fitted without a ``loss`` or ``y``.
        task_: The task used: given, implied by the loss, or inferred (``None`` for a
            callable loss without ``task``, or when no loss could be had).
        loss_used_: The loss minimised: ``loss`` if given, else the task's
            (``"log_loss"``/``"mse"``); ``None`` when there is none.
        unshrunk_weights_: The weights learned on all rows, before shrinkage.
        shrinkage_: Chosen pull towards equal weights, ``weights_ = (1 - shrinkage_) *
            unshrunk_weights_ + shrinkage_ / n_members``; 0.0 when fitted without ``groups``.
        shrinkage_grid_: The shrinkages compared (``None`` without ``groups``).
        cv_losses_: Cross-fitted loss at each of ``shrinkage_grid_`` (``None`` without
            ``groups``).
        cv_loss_: Cross-fitted loss at ``shrinkage_`` (``None`` without ``groups``).
        cv_loss_equal_: Loss of the equal average on the same rows: it learns nothing, so its
            cross-fitted loss is its plain loss (``None`` without ``groups``).
    """

    loss: Any
    task: Any
    requires_loss: ClassVar[bool] = True
    """Whether ``fit`` needs a loss (and so ``y``) to learn weights."""

    @abstractmethod
    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        """Learns the weights.

        Args:
            n_members: Number of members.
            objective: Loss of a weight vector on the fitting data; ``None`` only when the
                class sets ``requires_loss = False`` and no loss was given or inferred.

        Returns:
            Non-negative weights of shape ``(n_members,)``; the base normalises them.
        """

    def _shrinkages(self) -> tuple[float, ...]:
        """The shrinkage grid cross-fitting compares; subclasses with a parameter override."""
        return (1.0,)

    def fit(
        self, predictions: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None
    ) -> Self:
        """Validates the member predictions and learns ``weights_``.

        With ``groups`` (the fold id of each row: the run's folds, since the members' OOF
        predictions of a fold come from models that never saw it), the weights are
        *cross-fitted*: for each group, weights are learned on the other rows and scored on
        it, at each shrinkage ``s`` of the grid, ``(1 - s) * w + s * equal``. The shrinkage
        with the lowest pooled held-out loss wins (ties: the larger), and the weights learned
        on all rows are shrunk by it. Weights fitted to their own rows always look better
        than the equal average there; this asks held-out rows instead, so a member that only
        fits the fitting rows (an overfit trial) loses its weight.

        Args:
            predictions: Member predictions on the fitting rows (usually out-of-fold):
                ``(n_members, n_rows[, n_outputs])`` or a list of per-member arrays.
                Classification members give probabilities: the positive class's, ``(n_rows,)``
                or ``(n_rows, 1)``, for binary; ``(n_rows, n_classes)`` for multiclass.
            y: Targets: regression values, binary 0/1 labels, or multiclass integer labels
                ``(n_rows,)`` or one-hot ``(n_rows, n_classes)``.
            groups: Optional group (fold) id per row, ``(n_rows,)``, at least 2 distinct.

        Returns:
            ``self``, fitted.

        Raises:
            EnsembleError: On invalid parameters, predictions, targets or groups.
        """
        members, spec, target = self._prepare(predictions, y)
        objective = (
            None if spec is None or target is None else make_objective(spec, members, target)
        )
        weights = self._normalised(self._fit_weights(members.n_members, objective))
        self.unshrunk_weights_ = weights
        self.shrinkage_ = 0.0
        self.shrinkage_grid_: NDArray[np.float64] | None = None
        self.cv_losses_: NDArray[np.float64] | None = None
        self.cv_loss_: float | None = None
        self.cv_loss_equal_: float | None = None
        if groups is not None:
            if objective is None or spec is None or target is None:
                raise EnsembleError(
                    f"{type(self).__name__}.fit with `groups` needs a loss to compare "
                    "shrinkages; got no `loss`, `task` or `y`."
                )
            weights = self._cross_fit(members, y, groups, spec, target, weights, objective)
        loss = None if objective is None else objective(weights)
        if loss is not None and not np.isfinite(loss):
            raise EnsembleError(
                f"loss {self.loss_used_!r} is {loss} at the fitted weights; expected a finite "
                "number."
            )
        self.weights_ = weights
        self.n_members_ = members.n_members
        self.output_shape_ = members.output_shape
        if loss is None:
            self.__dict__.pop("loss_", None)  # a refit without a loss must not keep an old one
        else:
            self.loss_ = loss
        return self

    def predict(self, predictions: ArrayLike) -> FloatArray:
        """Returns the weighted average of the member predictions.

        Args:
            predictions: The same members, in the same order, on new rows.

        Returns:
            Array of shape ``(n_rows,)`` or ``(n_rows, n_outputs)``, like one member's.

        Raises:
            NotFittedError: If called before ``fit`` (also scikit-learn's).
            EnsembleError: If the predictions are invalid or do not match those of ``fit``.
        """
        members = self._check_new_members(predictions)
        averaged = np.tensordot(self.weights_, members.values, axes=1)
        return averaged.reshape(members.n_rows, *members.output_shape)

    def score(self, predictions: ArrayLike, y: ArrayLike) -> float:
        """Returns the fitted objective on new data: **lower is better**.

        Unlike scikit-learn's ``score`` (higher is better), this is the loss the weights were
        fitted to minimise (metrics where higher is better come back negated, e.g.
        ``-accuracy``), so that ``score(oof, y) == loss_`` on the fitting data.

        Raises:
            NotFittedError: If called before ``fit``.
            EnsembleError: If the ensemble has no loss, or the input is invalid.
        """
        members = self._check_new_members(predictions)
        if self.loss_used_ is None:
            raise EnsembleError(
                f"{type(self).__name__}.score needs a `loss`; got loss=None. "
                "Set one with set_params(loss=...) and fit again."
            )
        spec = resolve_loss(self.loss_used_)
        return make_objective(spec, members, check_target(y, members, spec.task))(self.weights_)

    # -- fitting helpers ------------------------------------------------------------------
    def _prepare(
        self, predictions: ArrayLike, y: ArrayLike | None
    ) -> tuple[Members, LossSpec | None, NDArray[Any] | None]:
        """Validates the input and settles the loss: given, the task's, or inferred."""
        task = check_task(self.task)
        given = None if self.loss is None else resolve_loss(self.loss)
        if given is not None and given.task is not None:
            task = given.task  # the loss implies the task and wins over `task`
        members = check_predictions(predictions, task=task)
        loss: Any = self.loss
        if loss is None and task is None and y is not None:
            task = infer_task(members.values, self._rows(y, members))
            if task == "classification":
                check_probabilities(members.values)
        if loss is None and task is not None and (y is not None or self.requires_loss):
            loss = TASK_LOSSES[task]
        if loss is None and self.requires_loss:
            raise EnsembleError(
                f"`y` is required to infer the loss of {type(self).__name__}; got None. "
                "Pass y, or a `loss`."
            )
        self.task_: Task | None = task
        self.loss_used_: Any = loss
        if loss is None:
            return members, None, None
        spec = resolve_loss(loss)
        if y is None:
            raise EnsembleError(f"`y` is required with loss {spec.name!r}; got None.")
        return members, spec, check_target(y, members, spec.task if task is None else task)

    @staticmethod
    def _rows(y: ArrayLike, members: Members) -> NDArray[Any]:
        target = np.asarray(y)
        if target.ndim == 0 or target.shape[0] != members.n_rows:
            got = "a scalar" if target.ndim == 0 else f"{target.shape[0]} rows"
            raise EnsembleError(f"y has {got} but predictions have {members.n_rows} rows.")
        return target

    @staticmethod
    def _normalised(weights: ArrayLike) -> FloatArray:
        array = np.asarray(weights, dtype=np.float64)
        return array / array.sum()

    def _cross_fit(
        self,
        members: Members,
        y: ArrayLike | None,
        groups: ArrayLike,
        spec: LossSpec,
        target: NDArray[Any],
        weights: FloatArray,
        objective: Objective,
    ) -> FloatArray:
        """Chooses ``shrinkage_`` by held-out loss over ``groups``; returns shrunk weights."""
        fold_of = check_groups(groups, members.n_rows)
        grid = check_shrinkages(self._shrinkages())
        n = members.n_members
        equal = np.full(n, 1.0 / n)
        raw_y = self._rows(y, members) if y is not None else None
        pooled = np.empty((grid.size, members.n_rows, members.n_outputs))
        for group in np.unique(fold_of):
            held = fold_of == group
            fold = clone(self).set_params(loss=self.loss_used_, task=self.task_)
            fold.fit(members.values[:, ~held], None if raw_y is None else raw_y[~held])
            for i, s in enumerate(grid):
                mixed = (1.0 - s) * fold.weights_ + s * equal
                pooled[i, held] = np.tensordot(mixed, members.values[:, held], axes=1)
        cv = make_objective(spec, Members(pooled, members.output_shape), target).member_losses()
        best = float(np.min(cv))
        tied = cv <= best + TIE_TOL * max(1.0, abs(best))
        choice = int(np.flatnonzero(tied)[np.argmax(grid[tied])])
        self.shrinkage_ = float(grid[choice])
        self.shrinkage_grid_ = grid
        self.cv_losses_ = np.asarray(cv, dtype=np.float64)
        self.cv_loss_ = float(cv[choice])
        self.cv_loss_equal_ = float(objective(equal))
        return (1.0 - self.shrinkage_) * weights + self.shrinkage_ * equal

    @staticmethod
    def _require(objective: Objective | None) -> Objective:
        """Narrows ``objective`` for ensembles with ``requires_loss = True``."""
        if objective is None:  # pragma: no cover - _prepare raises first
            raise EnsembleError("this ensemble needs a `loss`; got None.")
        return objective

    def _check_new_members(self, predictions: ArrayLike) -> Members:
        if not hasattr(self, "weights_"):
            raise EnsembleNotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(predictions, y) first."
            )
        members = check_predictions(predictions, task=self.task_)
        if members.n_members != self.n_members_:
            raise EnsembleError(
                f"predictions has {members.n_members} members but the "
                f"ensemble was fitted on {self.n_members_}; expected the same "
                "members in the same order."
            )
        if members.output_shape != self.output_shape_:
            raise EnsembleError(
                f"members predict per-row shape {members.output_shape} but "
                f"fit got {self.output_shape_}; expected the same outputs."
            )
        return members


def check_groups(groups: ArrayLike, n_rows: int) -> NDArray[Any]:
    """Validates a group id per row with at least 2 distinct groups."""
    fold_of = np.asarray(groups)
    if fold_of.ndim != 1 or fold_of.shape[0] != n_rows:
        raise EnsembleError(
            f"`groups` must have shape ({n_rows},), one id per row; got shape {fold_of.shape}."
        )
    n_groups = np.unique(fold_of).size
    if n_groups < 2:
        raise EnsembleError(f"`groups` must hold at least 2 distinct ids; got {n_groups}.")
    return fold_of


def check_shrinkages(values: Sequence[float]) -> NDArray[np.float64]:
    """Validates a shrinkage grid: a non-empty sequence of numbers in ``[0, 1]``."""
    try:
        grid = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise EnsembleError(f"`shrinkages` must be numbers in [0, 1]; got {values!r}.") from error
    if grid.size == 0 or not np.all((grid >= 0.0) & (grid <= 1.0)):
        raise EnsembleError(f"`shrinkages` must be numbers in [0, 1]; got {values!r}.")
    return np.unique(grid)
