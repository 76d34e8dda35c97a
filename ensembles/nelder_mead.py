"""Simplex weights fitted by Nelder-Mead with restarts, through a spherical reparameterisation."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import OptimizeResult, minimize
from sklearn.exceptions import ConvergenceWarning

from ensembles._losses import LossLike, Task
from ensembles._objectives import FloatArray, Objective
from ensembles._validation import check_int, check_positive_float
from ensembles.base import DEFAULT_SHRINKAGES, BaseEnsemble
from search.errors import EnsembleError

INITIAL_STEP = 0.25
"""Edge of the first simplex of each run, in radians (a sixth of an angle's useful range)."""


def angles_to_weights(angles: FloatArray) -> FloatArray:
    """Maps ``n_members - 1`` unconstrained angles onto the simplex of ``n_members`` weights.

    The angles are the spherical coordinates of a point ``theta`` on the unit sphere
    (``theta_0 = cos a_0``, ``theta_k = sin a_0 ... sin a_(k-1) cos a_k``, ``theta_last =
    sin a_0 ... sin a_last``) and the weights are ``theta ** 2``. We chose this over the
    usual alternatives because:

    * every point of the simplex, its faces included, is reached at finite angles: a weight
      is *exactly* zero where a cosine or sine is zero, and near such an angle it vanishes
      quadratically, so Nelder-Mead's finite resolution ``tol`` still yields weights of order
      ``tol ** 2``; a softmax only reaches zero at ``-inf``, so unhelpful members keep weight;
    * there are ``n_members - 1`` parameters and no redundant direction, unlike ``theta ** 2 /
      sum(theta ** 2)`` over ``n_members`` parameters, whose scale the loss ignores and on
      which Nelder-Mead wastes evaluations (about 40 % more in our benchmark);
    * any real angles are valid, so the optimiser needs no bounds or penalties.
    """
    # A Python loop: for the few members ensembles have, it is twice as fast as the numpy
    # version, and Nelder-Mead calls it thousands of times.
    weights = []
    tail = 1.0  # product of the squared sines so far: the weight left for later members
    for angle in angles.tolist():
        cosine = math.cos(angle)
        weights.append(tail * cosine * cosine)
        sine = math.sin(angle)
        tail *= sine * sine
    weights.append(tail)
    array = np.array(weights)
    return array / array.sum()


def weights_to_angles(weights: FloatArray) -> FloatArray:
    """Inverse of :func:`angles_to_weights`, with angles in ``[0, pi / 2]``."""
    tail = np.cumsum(weights[::-1])[::-1][:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(tail > 0, np.sqrt(weights[:-1] / tail), 1.0)
    return np.arccos(np.clip(cosine, 0.0, 1.0))


class NelderMeadEnsemble(BaseEnsemble):
    """Weights on the simplex that minimise the loss of the weighted average.

    Minimises ``loss(y, sum_j w_j * predictions_j)`` over non-negative weights summing to 1
    with ``scipy.optimize.minimize(method="Nelder-Mead")`` on the angles of
    :func:`angles_to_weights`. The first run starts from equal weights, the others from
    points drawn uniformly on the simplex (Dirichlet(1, ..., 1)) with ``random_state``, and
    the run with the lowest loss wins. The equal weights themselves win unless a run beats
    them, so the fitted loss is never above the equal average's on the fitting data.
    Nelder-Mead needs no gradient, so any loss or metric works; for piecewise-constant
    metrics such as ``"accuracy"`` it stalls quickly, prefer ``GreedyEnsemble`` there.

    The runs evaluate ``Objective.for_search()`` (for log loss a float32 twin, ~1e-7 relative
    error); their end points are then scored with the exact objective, which is what
    ``restart_losses_``, ``loss_`` and the choice of the winner use.

    The default ``restarts=10`` and ``tol=1e-4`` fit 10 members x 25,000 rows x 46 classes
    with log loss in about 1.2 s on 2 CPU cores (see ``benchmarks/bench_ensemble_fit.py``).
    Nelder-Mead needs many more iterations as dimensions grow: the same data takes ~12 s with
    20 members and ~40 s with 30; lower ``restarts`` or raise ``tol`` there, or use
    ``GreedyEnsemble``.

    Args:
        loss: Loss name (see ``ensembles.NAMED_LOSSES``) or callable ``(y_true,
            y_pred) -> float`` to minimise; ``None`` (default): the task's loss.
        task: ``"classification"``, ``"regression"`` or ``None`` (infer it from ``y`` and
            the predictions at fit); only used when ``loss`` is ``None``, to pick the task's
            loss (log loss or MSE), and for callables, to encode ``y`` and check inputs.
        shrinkages: Shrinkages towards the equal average that ``fit(..., groups=...)``
            compares by cross-fitted loss (0: the learned weights, 1: equal weights).
        restarts: Number of Nelder-Mead runs in total, the first from equal weights.
        max_iter: Iteration limit of each run; ``None`` uses scipy's default of 200 per
            parameter (``200 * (n_members - 1)``).
        tol: Stopping tolerance of each run, on the angles (radians, scipy's ``xatol``) and
            on the loss relative to the equal-weights loss (``fatol``), so that it means the
            same for a log loss of 1 and an MSE of 1e6.
        random_state: Seed or ``numpy.random.Generator`` for the restart points.

    Attributes:
        weights_: Fitted weights, ``(n_members,)``, non-negative, summing to 1.
        loss_: Their loss on the fitting data (lower is better).
        n_iter_: Nelder-Mead iterations of the winning run (as ``KMeans.n_iter_`` reports
            its best run); the other runs' work is not included.
        restart_losses_: Final loss of each run, in run order, ``(restarts,)``: spread here
            shows whether restarts matter for your data.
        n_members_: Number of members seen in ``fit``.
    """

    def __init__(
        self,
        *,
        loss: LossLike | None = None,
        task: Task | None = None,
        shrinkages: tuple[float, ...] = DEFAULT_SHRINKAGES,
        restarts: int = 10,
        max_iter: int | None = None,
        tol: float = 1e-4,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.loss = loss
        self.task = task
        self.shrinkages = shrinkages
        self.restarts = restarts
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _shrinkages(self) -> tuple[float, ...]:
        return tuple(self.shrinkages)

    def _fit_weights(self, n_members: int, objective: Objective | None) -> FloatArray:
        objective = self._require(objective)
        restarts = check_int(self.restarts, "restarts", minimum=1)
        max_iter = (
            None if self.max_iter is None else check_int(self.max_iter, "max_iter", minimum=1)
        )
        tol = check_positive_float(self.tol, "tol")
        rng = np.random.default_rng(self.random_state)
        equal = np.full(n_members, 1.0 / n_members)
        starts = [equal, *rng.dirichlet(np.ones(n_members), size=restarts - 1)]
        equal_loss = objective(equal)
        if not np.isfinite(equal_loss):
            raise EnsembleError(
                f"the loss of the equal average is {equal_loss}; expected a "
                "finite number to start from."
            )
        scale = abs(equal_loss) if equal_loss != 0.0 else 1.0
        search = objective.for_search()

        def scaled(angles: FloatArray) -> float:
            value = search(angles_to_weights(angles)) / scale
            return value if np.isfinite(value) else np.inf

        runs = [self._run(scaled, start, tol, max_iter) for start in starts]
        candidates = [angles_to_weights(run.x) for run in runs]
        self.restart_losses_ = np.array([objective(weights) for weights in candidates])
        winner = int(np.argmin(self.restart_losses_))
        self.n_iter_ = int(runs[winner].nit)
        if not self.restart_losses_[winner] < equal_loss:
            return equal
        if not runs[winner].success:
            warnings.warn(
                f"Nelder-Mead stopped before converging ({runs[winner].message}); increase "
                "`max_iter` or `tol`.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return candidates[winner]

    @staticmethod
    def _run(
        function: Callable[[FloatArray], float],
        start: FloatArray,
        tol: float,
        max_iter: int | None,
    ) -> OptimizeResult:
        angles = weights_to_angles(start)
        options = {
            "xatol": tol,
            "fatol": tol,
            "maxiter": max_iter,
            # Each vertex steps INITIAL_STEP radians along one angle: a larger first simplex
            # than scipy's 5 % of each coordinate, which saves ~15 % of the evaluations.
            "initial_simplex": np.vstack([angles, angles + INITIAL_STEP * np.eye(angles.size)]),
            # Gao & Han's adaptive parameters help from 3 dimensions on; with one parameter
            # (2 members) their shrink factor is 0 and would end the search at once.
            "adaptive": angles.size > 1,
        }
        return minimize(function, angles, method="Nelder-Mead", options=options)
