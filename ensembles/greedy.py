"""Greedy forward selection with replacement (Caruana et al., 2004)."""

from __future__ import annotations

import numpy as np

from ensembles._losses import LossLike, Task
from ensembles._objectives import FloatArray, Objective
from ensembles._validation import check_int
from ensembles.base import DEFAULT_SHRINKAGES, BaseEnsemble
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
            y_pred) -> float`` to minimise; ``None`` (default): the task's loss.
        task: ``"classification"``, ``"regression"`` or ``None`` (infer it from ``y`` and
            the predictions at fit); only used when ``loss`` is ``None``, to pick the task's
            loss (log loss or MSE), and for callables, to encode ``y`` and check inputs.
        shrinkages: Shrinkages towards the equal average that ``fit(..., groups=...)``
            compares by cross-fitted loss (0: the learned weights, 1: equal weights).
        max_iter: Number of selection steps after the initialisation (0 keeps just the
            ``n_init`` best members, equally weighted).
        n_init: Number of best members the ensemble starts from, each selected once; must be
            at most the number of members.
        max_members: The most distinct members the ensemble may use (``None``: no limit):
            once that many are chosen, steps may only add weight to them. This is what makes
            the estimator a *member selector* from a large pool (``search.ensembling``).

    Attributes:
        weights_: ``counts_ / counts_.sum()`` (shrunk towards equal weights when ``fit`` got
            ``groups`` and held-out rows favour that).
        selection_order_: Indices of the members with a count at the best iteration, in
            the order they were first selected, ``(n_selected,)``.
        counts_: Integer selection counts at the best iteration, ``(n_members,)``.
        loss_curve_: Ensemble loss after the initialisation (index 0) and after each step,
            ``(max_iter + 1,)``; the best iteration is its first minimum.
        n_members_: Number of members seen in ``fit``.
        loss_: The lowest value of ``loss_curve_``.
    """

    def __init__(
        self,
        *,
        loss: LossLike | None = None,
        task: Task | None = None,
        shrinkages: tuple[float, ...] = DEFAULT_SHRINKAGES,
        max_iter: int = 50,
        n_init: int = 1,
        max_members: int | None = None,
    ) -> None:
        self.loss = loss
        self.task = task
        self.shrinkages = shrinkages
        self.max_iter = max_iter
        self.n_init = n_init
        self.max_members = max_members

    def _shrinkages(self) -> tuple[float, ...]:
        return tuple(self.shrinkages)

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        objective = self._require(objective)
        max_iter = check_int(self.max_iter, "max_iter", minimum=0)
        n_init = check_int(self.n_init, "n_init", minimum=1)
        if n_init > n_members:
            raise EnsembleError(
                f"`n_init` must be at most the number of members ({n_members}); got {n_init}."
            )
        max_members = (
            n_members
            if self.max_members is None
            else check_int(self.max_members, "max_members", minimum=1)
        )
        if n_init > max_members:
            raise EnsembleError(
                f"`n_init` must be at most `max_members` ({max_members}); got {n_init}."
            )
        counts = np.zeros(n_members, dtype=np.int64)
        order = [int(i) for i in np.argsort(objective.member_losses(), kind="stable")[:n_init]]
        counts[order] = 1
        curve = [objective(counts / counts.sum())]
        best_counts, best_order = counts.copy(), list(order)
        for _ in range(max_iter):
            allowed = counts > 0 if len(order) >= max_members else np.ones(n_members, bool)
            candidates = (counts + np.eye(n_members)) / (counts.sum() + 1)
            losses = np.array(
                [objective(c) if ok else np.inf for c, ok in zip(candidates, allowed, strict=True)]
            )
            chosen = int(np.argmin(losses))
            if counts[chosen] == 0:
                order.append(chosen)
            counts[chosen] += 1
            if losses[chosen] < min(curve):
                best_counts, best_order = counts.copy(), list(order)
            curve.append(float(losses[chosen]))
        self.counts_ = best_counts
        self.selection_order_ = np.array(best_order, dtype=np.int64)
        self.loss_curve_ = np.array(curve)
        return best_counts.astype(np.float64)
