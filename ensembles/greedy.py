"""Greedy forward selection with replacement (Caruana et al., 2004)."""

from __future__ import annotations

import numpy as np

from ensembles._losses import LossLike
from ensembles._objectives import FloatArray, Objective
from ensembles._validation import check_int
from ensembles.base import BaseEnsemble
from search.errors import EnsembleError


class GreedyEnsemble(BaseEnsemble):
    """Caruana et al.'s "Ensemble Selection from Libraries of Models" (ICML 2004).

    Starts from the ``n_init`` best members (sorted initialisation), then ``max_iter`` times
    adds the member, possibly one already chosen, whose addition gives the lowest ensemble
    loss. Weights are selection counts over their total at the iteration with the lowest
    loss. Selecting with replacement yields rational weights that only move in steps of
    ``1 / total``, which regularises them: the reason this beats free-form weight
    optimisation when the out-of-fold set is small.

    Args:
        loss: Loss name (see ``ensembles.NAMED_LOSSES``) or callable ``(y_true,
            y_pred) -> float`` to minimise.
        max_iter: Number of selection steps after the initialisation (0 keeps just the
            ``n_init`` best members, equally weighted).
        n_init: Number of best members the ensemble starts from, each selected once; must be
            at most the number of members.

    Attributes:
        weights_: ``counts_ / counts_.sum()``.
        counts_: Integer selection counts at the best iteration, ``(n_members,)``.
        loss_curve_: Ensemble loss after the initialisation (index 0) and after each step,
            ``(max_iter + 1,)``; the best iteration is its first minimum.
        n_members_: Number of members seen in ``fit``.
        loss_: The lowest value of ``loss_curve_``.
    """

    def __init__(self, *, loss: LossLike, max_iter: int = 50, n_init: int = 1) -> None:
        self.loss = loss
        self.max_iter = max_iter
        self.n_init = n_init

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        objective = self._require(objective)
        max_iter = check_int(self.max_iter, "max_iter", minimum=0)
        n_init = check_int(self.n_init, "n_init", minimum=1)
        if n_init > n_members:
            raise EnsembleError(
                f"`n_init` must be at most the number of members ({n_members}); got {n_init}."
            )
        counts = np.zeros(n_members, dtype=np.int64)
        counts[np.argsort(objective.member_losses(), kind="stable")[:n_init]] = 1
        curve = [objective(counts / counts.sum())]
        best_counts = counts.copy()
        for _ in range(max_iter):
            candidates = (counts + np.eye(n_members)) / (counts.sum() + 1)
            losses = [objective(candidate) for candidate in candidates]
            chosen = int(np.argmin(losses))
            counts[chosen] += 1
            if losses[chosen] < min(curve):
                best_counts = counts.copy()
            curve.append(losses[chosen])
        self.counts_ = best_counts
        self.loss_curve_ = np.array(curve)
        return best_counts.astype(np.float64)
