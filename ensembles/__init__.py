"""Ensembles over member prediction arrays: learn weights on out-of-fold predictions, apply
them to test predictions.

All estimators follow scikit-learn's conventions and combine predictions of members trained
elsewhere, never models::

    ensemble = NelderMeadEnsemble(loss="log_loss", random_state=0).fit(oof, y)
    test_probabilities = ensemble.predict(test_predictions)

``score`` and ``loss_`` are losses: lower is better.
"""

from ensembles._losses import NAMED_LOSSES, LossLike
from ensembles._objectives import Objective
from ensembles.base import BaseEnsemble
from ensembles.greedy import GreedyEnsemble
from ensembles.nelder_mead import NelderMeadEnsemble
from ensembles.simple import AverageEnsemble, BestSingle

__all__ = [
    "NAMED_LOSSES",
    "AverageEnsemble",
    "BaseEnsemble",
    "BestSingle",
    "GreedyEnsemble",
    "LossLike",
    "NelderMeadEnsemble",
    "Objective",
]
