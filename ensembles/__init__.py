"""Ensembles over member prediction arrays: learn weights on out-of-fold predictions, apply
them to test predictions.

All estimators follow scikit-learn's conventions and combine predictions of members trained
elsewhere, never models::

    ensemble = NelderMeadEnsemble(random_state=0).fit(oof, y, groups=fold_ids)
    test_probabilities = ensemble.predict(test_predictions)

Every estimator constructs with defaults: without ``loss`` the task's loss (log loss or MSE)
is inferred from ``y`` and the predictions. ``groups`` (the folds the OOF predictions came
from) makes ``fit`` cross-fit the weights and shrink them towards the equal average by as
much as held-out rows ask for (``shrinkage_``, ``cv_loss_``, ``cv_loss_equal_``).

``score`` and ``loss_`` are losses: lower is better.
"""

from ensembles._losses import NAMED_LOSSES, TASK_LOSSES, LossLike, infer_task
from ensembles._objectives import Objective
from ensembles.base import DEFAULT_SHRINKAGES, BaseEnsemble, EnsembleNotFittedError
from ensembles.greedy import GreedyEnsemble
from ensembles.nelder_mead import NelderMeadEnsemble
from ensembles.simple import AverageEnsemble, BestSingle

__all__ = [
    "DEFAULT_SHRINKAGES",
    "NAMED_LOSSES",
    "TASK_LOSSES",
    "AverageEnsemble",
    "BaseEnsemble",
    "BestSingle",
    "EnsembleNotFittedError",
    "GreedyEnsemble",
    "LossLike",
    "NelderMeadEnsemble",
    "Objective",
    "infer_task",
]
