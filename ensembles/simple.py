"""The two baselines every learned ensemble must beat: the equal average and the best member."""

from __future__ import annotations

import numpy as np

from ensembles._losses import LossLike, Task
from ensembles._objectives import FloatArray, Objective
from ensembles.base import DEFAULT_SHRINKAGES, BaseEnsemble


class AverageEnsemble(BaseEnsemble):
    """Equal weights for every member.

    Learns nothing, so it cannot overfit the out-of-fold predictions: the reference a weighted
    ensemble has to beat on held-out data.

    Args:
        loss: Optional loss name or callable, used only to report ``loss_`` and for
            ``score``; without it the task's loss is inferred when ``y`` is given, and
            without ``y`` either ``fit`` checks only shapes and finiteness.
        task: ``"classification"``, ``"regression"`` or ``None`` (infer it when ``y`` is
            given); ``"classification"`` has probabilities checked.

    Attributes:
        weights_: ``1 / n_members`` each.
        n_members_: Number of members seen in ``fit``.
        loss_: The loss of the equal average on the fitting data (only with a ``loss``).
    """

    requires_loss = False

    def __init__(self, *, loss: LossLike | None = None, task: Task | None = None) -> None:
        self.loss = loss
        self.task = task

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        return np.full(n_members, 1.0 / n_members)


class BestSingle(BaseEnsemble):
    """All weight on the member with the lowest loss (the first one on ties).

    Args:
        loss: Loss name (see ``ensembles.NAMED_LOSSES``) or callable ``(y_true,
            y_pred) -> float`` to minimise; ``None`` (default): the task's loss.
        task: ``"classification"``, ``"regression"`` or ``None`` (infer it from ``y`` and
            the predictions at fit); only used when ``loss`` is ``None``, to pick the task's
            loss (log loss or MSE), and for callables, to encode ``y`` and check inputs.
        shrinkages: Shrinkages towards the equal average that ``fit(..., groups=...)``
            compares by cross-fitted loss (0: the learned weights, 1: equal weights).

    Attributes:
        weights_: One-hot on the best member (shrunk towards equal weights when ``fit``
            got ``groups`` and held-out rows favour that).
        best_index_: Index of that member.
        member_losses_: Each member's loss on the fitting data, ``(n_members,)``.
        n_members_: Number of members seen in ``fit``.
        loss_: The best member's loss.
    """

    def __init__(
        self,
        *,
        loss: LossLike | None = None,
        task: Task | None = None,
        shrinkages: tuple[float, ...] = DEFAULT_SHRINKAGES,
    ) -> None:
        self.loss = loss
        self.task = task
        self.shrinkages = shrinkages

    def _shrinkages(self) -> tuple[float, ...]:
        return tuple(self.shrinkages)

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        self.member_losses_ = self._require(objective).member_losses()
        self.best_index_ = int(np.argmin(self.member_losses_))
        weights = np.zeros(n_members)
        weights[self.best_index_] = 1.0
        return weights
