"""The two baselines every learned ensemble must beat: the equal average and the best member."""

from __future__ import annotations

import numpy as np

from ensembles._losses import LossLike
from ensembles._objectives import FloatArray, Objective
from ensembles.base import BaseEnsemble


class AverageEnsemble(BaseEnsemble):
    """Equal weights for every member.

    Learns nothing, so it cannot overfit the out-of-fold predictions: the reference a weighted
    ensemble has to beat on held-out data.

    Args:
        loss: Optional loss name or callable, used only to report ``loss_`` and for
            ``score``; without it ``fit`` ignores ``y`` and checks only shapes and
            finiteness (give it for classification to have probabilities checked too).

    Attributes:
        weights_: ``1 / n_members`` each.
        n_members_: Number of members seen in ``fit``.
        loss_: The loss of the equal average on the fitting data (only with a ``loss``).
    """

    requires_loss = False

    def __init__(self, *, loss: LossLike | None = None) -> None:
        self.loss = loss

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        return np.full(n_members, 1.0 / n_members)


class BestSingle(BaseEnsemble):
    """All weight on the member with the lowest loss (the first one on ties).

    Args:
        loss: Loss name (see ``ensembles.NAMED_LOSSES``) or callable ``(y_true,
            y_pred) -> float`` to minimise.

    Attributes:
        weights_: One-hot on the best member.
        best_index_: Index of that member.
        member_losses_: Each member's loss on the fitting data, ``(n_members,)``.
        n_members_: Number of members seen in ``fit``.
        loss_: The best member's loss.
    """

    def __init__(self, *, loss: LossLike) -> None:
        self.loss = loss

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        self.member_losses_ = self._require(objective).member_losses()
        self.best_index_ = int(np.argmin(self.member_losses_))
        weights = np.zeros(n_members)
        weights[self.best_index_] = 1.0
        return weights
