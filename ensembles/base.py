"""The estimator contract every ensemble follows, and the one method a new one writes.

Ensembles combine *prediction arrays* of members trained elsewhere (like scikit-learn's
``StackingClassifier(cv="prefit")``), never models: ``fit(oof_predictions, y)`` learns weights
on out-of-fold predictions and ``predict(test_predictions)`` applies them. Following
scikit-learn, ``__init__`` only stores keyword-only parameters, ``fit`` validates and returns
``self``, learned attributes end in ``_`` and ``predict`` refuses to run before ``fit``.

A new ensemble subclasses :class:`BaseEnsemble` and implements ``_fit_weights``; validation,
loss handling, ``predict`` and ``score`` come with the base.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from ensembles._losses import LossSpec, resolve_loss
from ensembles._objectives import FloatArray, Objective, make_objective
from ensembles._validation import Members, check_predictions, check_target
from search.errors import EnsembleError, NotFittedError


class BaseEnsemble(BaseEstimator, ABC):
    """Weighted average of member predictions with weights learned by ``_fit_weights``.

    ``get_params``/``set_params`` (and so ``sklearn.clone``) come from scikit-learn's
    ``BaseEstimator``; subclasses must therefore store each ``__init__`` argument unchanged
    under its own name.

    Attributes:
        weights_: Float array ``(n_members,)``, non-negative and summing to 1.
        n_members_: Number of members seen in ``fit``.
        loss_: The objective at ``weights_`` on the data passed to ``fit`` (lower is
            better). Not set by an ``AverageEnsemble`` fitted without a ``loss``.
    """

    loss: Any
    requires_loss: ClassVar[bool] = True
    """Whether ``fit`` needs a ``loss`` (and so ``y``) to learn weights."""

    @abstractmethod
    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        """Learns the weights.

        Args:
            n_members: Number of members.
            objective: Loss of a weight vector on the fitting data; ``None`` only when the
                class sets ``requires_loss = False`` and no ``loss`` was given.

        Returns:
            Non-negative weights of shape ``(n_members,)``; the base normalises them.
        """

    def fit(self, predictions: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Validates the member predictions and learns ``weights_``.

        Args:
            predictions: Member predictions on the fitting rows (usually out-of-fold):
                ``(n_members, n_rows[, n_outputs])`` or a list of per-member arrays.
                Classification members give probabilities: the positive class's, ``(n_rows,)``
                or ``(n_rows, 1)``, for binary; ``(n_rows, n_classes)`` for multiclass.
            y: Targets: regression values, binary 0/1 labels, or multiclass integer labels
                ``(n_rows,)`` or one-hot ``(n_rows, n_classes)``.

        Returns:
            ``self``, fitted.

        Raises:
            EnsembleError: On invalid parameters, predictions or targets.
        """
        spec = self._loss_spec()
        members = check_predictions(predictions, task=spec.task if spec else None)
        objective = None if spec is None else self._objective(spec, members, y)
        weights = np.asarray(self._fit_weights(members.n_members, objective), dtype=np.float64)
        weights /= weights.sum()
        loss = None if objective is None else objective(weights)
        if loss is not None and not np.isfinite(loss):
            raise EnsembleError(
                f"loss {self.loss!r} is {loss} at the fitted weights; expected a finite number."
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
            NotFittedError: If called before ``fit``.
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
            EnsembleError: If no ``loss`` was given, or the input is invalid.
        """
        members = self._check_new_members(predictions)
        spec = self._loss_spec()
        if spec is None:
            raise EnsembleError(
                f"{type(self).__name__}.score needs a `loss`; got loss=None. "
                "Set one with set_params(loss=...)."
            )
        return self._objective(spec, members, y)(self.weights_)

    def _loss_spec(self) -> LossSpec | None:
        if self.loss is None and not self.requires_loss:
            return None
        if self.loss is None:
            raise EnsembleError(
                f"{type(self).__name__} needs a `loss`: a loss name or a "
                "callable (y_true, y_pred) -> float; got None."
            )
        return resolve_loss(self.loss)

    @staticmethod
    def _objective(spec: LossSpec, members: Members, y: ArrayLike | None) -> Objective:
        if y is None:
            raise EnsembleError(f"`y` is required with loss {spec.name!r}; got None.")
        return make_objective(spec, members, check_target(y, members, spec.task))

    @staticmethod
    def _require(objective: Objective | None) -> Objective:
        """Narrows ``objective`` for ensembles with ``requires_loss = True``."""
        if objective is None:  # pragma: no cover - _loss_spec raises first
            raise EnsembleError("this ensemble needs a `loss`; got None.")
        return objective

    def _check_new_members(self, predictions: ArrayLike) -> Members:
        if not hasattr(self, "weights_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(predictions, y) first."
            )
        spec = self._loss_spec()
        members = check_predictions(predictions, task=spec.task if spec else None)
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
