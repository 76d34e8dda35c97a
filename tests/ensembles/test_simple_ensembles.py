"""The baselines: the equal average and the best single member."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_squared_error

from ensembles import AverageEnsemble, BestSingle
from search.errors import EnsembleError


def test_average_gives_equal_weights() -> None:
    predictions = np.random.default_rng(0).normal(size=(4, 9))

    ensemble = AverageEnsemble(loss="mse").fit(predictions, np.zeros(9))

    np.testing.assert_array_equal(ensemble.weights_, np.full(4, 0.25))
    np.testing.assert_allclose(ensemble.predict(predictions), predictions.mean(axis=0))
    assert ensemble.loss_ == pytest.approx(mean_squared_error(np.zeros(9), predictions.mean(0)))


def test_average_without_loss_needs_no_target_but_cannot_score() -> None:
    predictions = np.random.default_rng(1).normal(size=(3, 5))

    ensemble = AverageEnsemble().fit(predictions)

    assert not hasattr(ensemble, "loss_")
    with pytest.raises(EnsembleError, match="score needs a `loss`; got loss=None"):
        ensemble.score(predictions, np.zeros(5))


def test_average_with_classification_loss_checks_probabilities() -> None:
    logits = np.random.default_rng(2).normal(size=(3, 5, 4))

    AverageEnsemble().fit(logits)  # no loss: only shapes and finiteness are checked
    with pytest.raises(EnsembleError, match="probabilities"):
        AverageEnsemble(loss="log_loss").fit(logits, np.zeros(5, dtype=int))


@pytest.mark.parametrize("best", [0, 1, 3])
def test_best_single_picks_the_lowest_loss_member(best: int) -> None:
    rng = np.random.default_rng(best)
    y = rng.integers(0, 3, size=100)
    noise = rng.uniform(0.1, 1.0, size=(4, 100, 3))
    noise[best, np.arange(100), y] += 3.0  # the clearly best member
    predictions = noise / noise.sum(axis=-1, keepdims=True)

    ensemble = BestSingle(loss="log_loss").fit(predictions, y)

    assert ensemble.best_index_ == best
    np.testing.assert_array_equal(ensemble.weights_, np.eye(4)[best])
    expected = [log_loss(y, member, labels=range(3)) for member in predictions]
    np.testing.assert_allclose(ensemble.member_losses_, expected, rtol=1e-12)
    assert ensemble.loss_ == pytest.approx(min(expected), rel=1e-12)


def test_refit_without_loss_forgets_the_old_loss() -> None:
    predictions = np.random.default_rng(3).normal(size=(3, 5))
    ensemble = AverageEnsemble(loss="mse").fit(predictions, np.zeros(5))

    ensemble.set_params(loss=None).fit(predictions)

    assert not hasattr(ensemble, "loss_")
